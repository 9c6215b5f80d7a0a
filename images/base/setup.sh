#!/bin/sh
# Runs once inside the fresh root filesystem (mmdebstrap customize hook), before `docker import`.
set -eu
update-ca-certificates --fresh >/dev/null
sed -i -e 's/^# *\(fr_FR.UTF-8 UTF-8\)/\1/' -e 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' /etc/locale.gen
locale-gen >/dev/null
# The student: uid 1000 in every course image, owner of /home/jovyan (a host folder at run time).
useradd --uid 1000 --user-group --create-home --shell /bin/bash jovyan
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/setup.sh
