#!/usr/bin/env bash
# A private Postfix on 127.0.0.1:10025 for trying Warden: it accepts XCLIENT
# from 127.0.0.1 (Warden) and delivers mail for example.com to a Maildir.
# It never relays anywhere else and leaves the machine's own Postfix alone.
#
#   contrib/postfix/local-backend.sh start|stop|status
# Environment: WARDEN_QS_DIR (default /var/tmp/warden-quickstart),
#              WARDEN_QS_PORT (default 10025).
set -euo pipefail

dir=${WARDEN_QS_DIR:-/var/tmp/warden-quickstart}
port=${WARDEN_QS_PORT:-10025}
etc=$dir/etc

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# `postfix -c DIR` only works for directories the default main.cf lists.
allow_config_dir() {
    local main=/etc/postfix/main.cf
    if [ ! -f "$main" ]; then
        printf 'compatibility_level = 3.6\n' | $SUDO tee "$main" >/dev/null
    fi
    if ! postconf -h alternate_config_directories 2>/dev/null | grep -qF "$etc"; then
        local cur
        cur=$(postconf -h alternate_config_directories 2>/dev/null || true)
        $SUDO postconf -e "alternate_config_directories = ${cur:+$cur, }$etc"
    fi
}

write_config() {
    $SUDO mkdir -p "$etc" "$dir/queue" "$dir/data" "$dir/mail"
    $SUDO chown postfix "$dir/data"
    $SUDO chown nobody:nogroup "$dir/mail"
    $SUDO tee "$etc/main.cf" >/dev/null <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
myhostname = backend.localdomain
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
alias_maps =
local_recipient_maps =
mynetworks = 127.0.0.0/8
# Warden tells us who the real client is.
smtpd_authorized_xclient_hosts = 127.0.0.1
# Mail for example.com lands in $dir/mail/inbox/ (a Maildir).
virtual_mailbox_domains = example.com
virtual_mailbox_base = $dir/mail
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(getent group nogroup | cut -d: -f3)
# Nothing leaves this machine.
smtpd_relay_restrictions = reject_unauth_destination
default_transport = error:this test backend does not relay
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
CF
    # master.cf: the stock one, smtpd on our port, nothing chrooted.
    awk -v port="$port" '
        /^smtp[ \t]+inet/ { $1 = "127.0.0.1:" port }
        /^[a-z].*[ \t](inet|unix|unix-dgram|pass|fifo)[ \t]/ { $5 = "n" }
        { print }' /usr/share/postfix/master.cf.dist | $SUDO tee "$etc/master.cf" >/dev/null
    # Postfix waits for config files younger than a second: backdate them.
    $SUDO touch -d '1 minute ago' "$etc/main.cf" "$etc/master.cf"
}

case "${1:-}" in
start)
    # A run that was killed may have left the instance up: restart it.
    if [ -f "$etc/main.cf" ] && $SUDO postfix -c "$etc" status >/dev/null 2>&1; then
        $SUDO postfix -c "$etc" stop
    fi
    write_config
    allow_config_dir
    $SUDO postfix -c "$etc" start
    echo "backend: Postfix on 127.0.0.1:$port, mail for example.com in $dir/mail/inbox/new/, log $dir/maillog"
    ;;
stop)
    [ -d "$etc" ] && $SUDO postfix -c "$etc" stop 2>/dev/null || true
    ;;
status)
    $SUDO postfix -c "$etc" status
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
