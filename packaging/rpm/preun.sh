# audetect %preun ($1: 0 on erase, 1 on upgrade): on erase, stop the service
# (a stopping audetect deletes its audit rules and restores the audit status).
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable audetect.service >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl stop audetect.service >/dev/null 2>&1 || :
    fi
fi
