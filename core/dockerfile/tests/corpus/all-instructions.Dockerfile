# syntax=docker/dockerfile:1
ARG BASE=debian:12
FROM --platform=linux/amd64 ${BASE} AS base
LABEL org.opencontainers.image.title="demo app" version=1
MAINTAINER Jane Doe <jane@example.com>
ENV PATH=/opt/bin:$PATH LANG=C.UTF-8
ENV LANG C.UTF-8
ARG USER=app UID
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked --network=host apt-get update
RUN ["/bin/echo", "exec form"]
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /srv/$USER
COPY --chown=app:app --chmod=0644 --link src/ ./src/
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/a.tar.gz /tmp/
USER $USER:$USER
EXPOSE 8080/tcp 9090/udp
VOLUME ["/data", "/logs"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5m --timeout=3s CMD curl -f http://localhost/ || exit 1
ONBUILD COPY . /app/src
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["serve"]
