#!/bin/sh
# "make install DESTDIR=..." in $BUILDDIR puts exactly these files in the
# configured directories (read with "make print-dirs"):
#   $sbindir/hellod, $sysconfdir/hellod.conf, $mandir/man8/hellod.8,
#   $mandir/man5/hellod.conf.5, $systemdsystemunitdir/hellod.{service,socket}
# the installed service runs $sbindir/hellod with $sysconfdir/hellod.conf,
# the installed binary accepts the installed configuration, a second
# install keeps a modified hellod.conf, and "make uninstall" removes
# everything but a modified hellod.conf.
#
# Environment: BUILDDIR, SRCDIR (set by make check); MAKE (optional).
# Exit 0 pass, 1 fail.

set -u

: "${BUILDDIR:?BUILDDIR is not set}"
: "${SRCDIR:?SRCDIR is not set}"
MAKE=${MAKE:-make}
# Not the flags of the "make check" that runs this test (-n, -k, -j, a
# jobserver, variables set on its command line).
unset MAKEFLAGS MFLAGS MAKELEVEL GNUMAKEFLAGS DESTDIR

status=0
fail() {
	echo "FAIL: $*"
	status=1
}
ok() {
	echo "ok: $*"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hellod-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# make in $BUILDDIR; the output goes to a log, shown when make fails.
run_make() {
	log=$1
	shift
	if (cd "$BUILDDIR" && $MAKE "$@") >"$log" 2>&1; then
		return 0
	fi
	echo "FAIL: $MAKE $* (in $BUILDDIR) failed:"
	sed 's/^/  /' "$log"
	exit 1
}

run_make "$tmp/dirs" -s print-dirs
dir() {
	sed -n "s/^$1=//p" "$tmp/dirs" | tail -n 1
}
prefix=$(dir prefix)
sbindir=$(dir sbindir)
sysconfdir=$(dir sysconfdir)
mandir=$(dir mandir)
unitdir=$(dir systemdsystemunitdir)
absolute() {
	case $2 in
	/*) echo "$1 = $2" ;;
	*)
		echo "FAIL: make print-dirs gave $1='$2', not an absolute path:"
		sed 's/^/  /' "$tmp/dirs"
		exit 1
		;;
	esac
}
absolute prefix "$prefix"
absolute sbindir "$sbindir"
absolute sysconfdir "$sysconfdir"
absolute mandir "$mandir"
absolute systemdsystemunitdir "$unitdir"

dest=$tmp/dest
run_make "$tmp/install1.log" install DESTDIR="$dest"

# Exactly the expected files, nothing else.
expected="$sbindir/hellod
$sysconfdir/hellod.conf
$mandir/man8/hellod.8
$mandir/man5/hellod.conf.5
$unitdir/hellod.service
$unitdir/hellod.socket"
printf '%s\n' "$expected" | LC_ALL=C sort >"$tmp/expected"
(cd "$dest" && find . \( -type f -o -type l \) -print) | sed 's|^\.||' |
	LC_ALL=C sort >"$tmp/installed"
if cmp -s "$tmp/expected" "$tmp/installed"; then
	ok "installed files:"
	sed 's/^/  /' "$tmp/installed"
else
	fail "installed files differ from the expected layout (-expected +installed):"
	diff -u "$tmp/expected" "$tmp/installed" | sed '1,2d; s/^/  /'
fi

# Contents.
if test -x "$dest$sbindir/hellod"; then
	ok "$sbindir/hellod is executable"
else
	fail "$sbindir/hellod is missing or not executable"
fi
# The pages are made in the build directory, with the configured paths.
for pair in "$SRCDIR/conf/hellod.conf $sysconfdir/hellod.conf" \
	"$BUILDDIR/man/hellod.8 $mandir/man8/hellod.8" \
	"$BUILDDIR/man/hellod.conf.5 $mandir/man5/hellod.conf.5"; do
	src=${pair%% *}
	inst=${pair#* }
	if cmp -s "$src" "$dest$inst"; then
		ok "$inst is $src"
	else
		fail "$inst differs from $src (or is missing)"
	fi
done

svc=$dest$unitdir/hellod.service
sock=$dest$unitdir/hellod.socket
if test -f "$svc"; then
	execstart=$(sed -n 's/^ExecStart=//p' "$svc")
	case $execstart in
	"$sbindir/hellod "*"-c $sysconfdir/hellod.conf"*)
		ok "ExecStart=$execstart"
		;;
	*)
		fail "hellod.service: ExecStart=$execstart does not run" \
			"$sbindir/hellod with -c $sysconfdir/hellod.conf"
		;;
	esac
fi
for f in "$svc" "$sock" "$dest$mandir/man8/hellod.8" \
	"$dest$mandir/man5/hellod.conf.5"; do
	if test -f "$f" && grep -n '@[A-Za-z_]*@' "$f"; then
		fail "$(basename "$f"): placeholders left unsubstituted (above)"
	fi
done

if test -x "$dest$sbindir/hellod"; then
	out=$("$dest$sbindir/hellod" -t -c "$dest$sysconfdir/hellod.conf" 2>&1)
	if test "$out" = "configuration OK: $dest$sysconfdir/hellod.conf"; then
		ok "installed hellod -t -c installed hellod.conf: $out"
	else
		fail "installed hellod -t -c installed hellod.conf: $out"
	fi
fi

# A reinstall keeps the administrator's configuration.
conf=$dest$sysconfdir/hellod.conf
if test -f "$conf"; then
	printf '# changed by the administrator\n' >>"$conf"
	cp "$conf" "$tmp/conf.modified"
	run_make "$tmp/install2.log" install DESTDIR="$dest"
	if cmp -s "$tmp/conf.modified" "$conf"; then
		ok "a second make install kept the modified hellod.conf"
	else
		fail "a second make install overwrote the modified hellod.conf"
	fi
	if cmp -s "$BUILDDIR/man/hellod.8" "$dest$mandir/man8/hellod.8" &&
		test -x "$dest$sbindir/hellod"; then
		ok "the second make install reinstalled the other files"
	else
		fail "the second make install lost other files"
	fi

	# Uninstall: everything goes but the modified configuration.
	run_make "$tmp/uninstall.log" uninstall DESTDIR="$dest"
	left=$(cd "$dest" && find . \( -type f -o -type l \) -print |
		sed 's|^\.||')
	if test "$left" = "$sysconfdir/hellod.conf" &&
		cmp -s "$tmp/conf.modified" "$conf"; then
		ok "make uninstall kept only the modified hellod.conf"
	else
		fail "after make uninstall, wanted only the modified" \
			"$sysconfdir/hellod.conf, found: $left"
	fi
fi

exit $status
