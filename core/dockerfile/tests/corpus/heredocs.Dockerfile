FROM alpine
RUN <<EOF
#!/bin/sh
echo "hello $USER"
EOF
RUN <<-"SCRIPT" sh -x
	set -e
		echo tabbed
	SCRIPT
RUN cat <<A > /a && cat <<'B' > /b
first $X
A
second $X
B
COPY <<conf.ini <<'raw.txt' /etc/app/
[main]
name=$NAME
conf.ini
$literal
raw.txt
RUN 3<<EOF cat /dev/fd/3
fd three
EOF
