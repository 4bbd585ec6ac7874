# audetect %post ($1: 1 on install, 2 on upgrade; %postun restarts on upgrade).
# The administrator's rule directory (detection.rule_paths' default): created
# here because cargo-generate-rpm cannot package an empty directory.
mkdir -p -m 0750 /etc/audetect/rules.d
# Like the .deb: enabled at boot and started on first install.
if [ "$1" -eq 1 ]; then
    systemctl enable audetect.service >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || :
        systemctl start audetect.service >/dev/null 2>&1 || :
    fi
fi
