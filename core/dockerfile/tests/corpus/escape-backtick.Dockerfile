# escape=`
# syntax=docker/dockerfile:1

FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command"]
RUN New-Item -ItemType Directory C:\Example `
    # comment lines inside continuations are skipped
    ; Write-Host done
COPY testfile.txt c:\
WORKDIR C:\Example
ENV DIR=C:\Program` Files
