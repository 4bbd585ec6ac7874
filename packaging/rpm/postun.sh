# audetect %postun ($1: 0 on erase, 1 on upgrade).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -ge 1 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl try-restart audetect.service >/dev/null 2>&1 || :
    fi
else
    # rpm removed the files it owns (a modified audetect.toml is kept as
    # audetect.toml.rpmsave). The directories it cannot own (cargo-generate-rpm
    # packages no directory entries) go when empty; the runtime directory goes.
    rm -rf /run/audetect
    for dir in /etc/audetect/rules.d /etc/audetect /usr/share/audetect/rules \
        /usr/share/audetect /usr/share/doc/audetect /usr/share/licenses/audetect; do
        rmdir "$dir" 2>/dev/null || :
    done
    # Audit rules a crashed audetect left behind (a stopping audetect deletes
    # its own), unless auditd loads audetect's rules itself (augenrules).
    if command -v auditctl >/dev/null 2>&1 &&
        ! grep -qs -e 'key=audetect' -e '-k audetect' \
            /etc/audit/rules.d/*.rules /etc/audit/audit.rules; then
        # Every audetect key (connect, setsid, clock, and the kinds a rule
        # pack adds: exec, fork, ...), as auditctl -l lists them.
        for key in $(auditctl -l 2>/dev/null |
            sed -n 's/.*\(key=\|-k \)\(audetect-[A-Za-z0-9_-]*\)$/\2/p' | sort -u); do
            auditctl -D -k "$key" >/dev/null 2>&1 || :
        done
    fi
fi
