#!/usr/bin/env bash
# macOS: wrap dist/CroMoTEX-Review.app in a .dmg. NOT TESTED HERE: no macOS machine.
#   python3 -m pip install -e .[build]
#   python3 build_installer.py --no-archive --self-test   # --windowed on macOS makes the .app
#   bash packaging/macos/make_dmg.sh
# The .app's own self-test (report in ~/Library/Logs/cromotex-review/self-test.json by default):
#   dist/CroMoTEX-Review.app/Contents/MacOS/CroMoTEX-Review --self-test
# For distribution outside the site the .app must also be signed and notarised:
#   codesign --deep --force --options runtime --sign "Developer ID Application: ..." dist/CroMoTEX-Review.app
#   xcrun notarytool submit dist/CroMoTEX-Review-<version>.dmg --wait ...; xcrun stapler staple ...
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=$(python3 -c "import engine; print(engine.__version__)")
APP=dist/CroMoTEX-Review.app
[ -d "$APP" ] || { echo "missing $APP: run build_installer.py on macOS first" >&2; exit 1; }
STAGE=$(mktemp -d)
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "CroMoTEX Review" -srcfolder "$STAGE" -ov -format UDZO "dist/CroMoTEX-Review-$VERSION.dmg"
rm -rf "$STAGE"
echo "wrote dist/CroMoTEX-Review-$VERSION.dmg"
