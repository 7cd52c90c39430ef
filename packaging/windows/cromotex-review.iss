; Inno Setup 6 script for CroMoTEX Review (Windows). NOT TESTED HERE: no Windows machine.
; Steps on a Windows build machine:
;   py -m pip install -e .[build]
;   py build_installer.py --no-archive --self-test
;   iscc packaging\windows\cromotex-review.iss
; Output: dist\CroMoTEX-Review-Setup-<version>.exe (per-user or per-machine install).
; Keep AppVersion equal to engine.__version__ (pyproject version).
; The [Run] self-test writes its JSON report to %LOCALAPPDATA%\CroMoTEX Review\self-test.json;
; a failing self-test does not abort the installation: check the report.

#define AppName "CroMoTEX Review"
#define AppVersion "0.1.0"
#define AppExe "CroMoTEX-Review.exe"

[Setup]
AppId={{6C1B3F4E-7A0D-4C43-9E0B-3C5D2A1F0E11}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=CroMoTEX Review
DefaultDirName={autopf}\CroMoTEX Review
DefaultGroupName=CroMoTEX Review
OutputDir=..\..\dist
OutputBaseFilename=CroMoTEX-Review-Setup-{#AppVersion}
Compression=lzma2/max
SolidCompression=yes
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequiredOverridesAllowed=dialog
WizardStyle=modern
SetupIconFile=..\..\resources\icons\cromotex.ico
UninstallDisplayIcon={app}\{#AppExe}

[Files]
Source: "..\..\dist\CroMoTEX-Review\*"; DestDir: "{app}"; Flags: recursesubdirs ignoreversion

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{group}\{#AppName} (demo case)"; Filename: "{app}\{#AppExe}"; Parameters: "--demo"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop icon"; Flags: unchecked

[Run]
; Verify the installation: models, inference and window (writes a JSON report).
Filename: "{app}\{#AppExe}"; Parameters: "--self-test --report ""{localappdata}\CroMoTEX Review\self-test.json"""; Flags: runhidden waituntilterminated; StatusMsg: "Running the self-test..."
Filename: "{app}\{#AppExe}"; Parameters: "--demo"; Description: "Open the demo case"; Flags: postinstall nowait skipifsilent
