"""De-identification of GE MUSE, Philips (SierraECG / PhilipsECG) and HL7 aECG XML files.

Where identifiers live (see the readers engine/io/muse_xml.py, philips_xml.py,
hl7_aecg.py and the sample files in tests/data/formats):

- MUSE `RestingECG`: `PatientDemographics` (PatientID, names, DateofBirth, Race,
  PatientAge/Gender), `TestDemographics` (site, location, room, cart, operator /
  editor / overreader / referring names and IDs, acquisition and edit dates),
  `Order` (HIS account, visit, attending / admitting names and IDs, admit date and
  diagnosis), `PharmaData` (unique ECG ID, cart ID).
- Philips `restingecgdata`: `patient/generalpatientdata` (patientid, MRN, name,
  age/dateofbirth, sex, race, height, weight), `dataacquisition/acquirer`
  (institution, department, room, bed, clinicians with `id` attributes),
  `orderinfo`, `documentinfo` (document and file names), `userdefines`, the
  confirming clinician, and `date` attributes on many elements.
- HL7 aECG: `subjectDemographicPerson` (name, birthTime, raceCode), the trial
  subject's `id`, every person / organisation `name` and `addr`, `id` extensions,
  time `value` attributes, free-text comments.

The patient ID becomes the export's pseudonym; names, addresses and other IDs are
blanked; dates are moved by the patient's keyed offset (times of day kept);
age and sex are blanked unless `keep_characteristics`. The waveform, the
measurements and the interpretive statements are kept. The copy is written as
UTF-8 XML (namespace prefixes may change; the content is the same).
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from engine.deid.keys import DeidKeys, shift_text
from engine.errors import DeidError

#: Element local names (lower case) whose text is blanked, in any flavour.
BLANK_TEXT = frozenset({
    # MUSE
    "patientlastname", "patientfirstname", "patientmiddlename", "dateofbirth", "race", "site",
    "sitename", "location", "locationname", "roomid", "cartnumber", "hisaccountnumber", "hislocation",
    "hisordernumber", "alternatevisitid", "admitdiagnosis", "bed", "pharmauniqueecgid", "pharmacartid",
    "hisstatus", "admitsource", "hospitalservice", "hisdisposition",
    # Philips
    "mrn", "lastname", "firstname", "middlename", "encounterid", "room", "departmentid",
    "departmentname", "institutionid", "institutionname", "institutionlocationid", "facilityid",
    "facilityname", "orderingclinician", "attendingclinician", "referringclinician", "ordernumber",
    "uniqueorderid", "orderbillingcode", "reasonfororder", "inbox", "documentname", "filename",
    "editor", "operator", "confirmingclinician", "mdsignatureline", "value",
    # HL7 aECG
    "text", "city", "state", "country", "streetaddressline", "postalcode", "title"})
#: Local-name patterns of MUSE person / ID fields (…LastName, …FirstName, …ID, …HISID).
BLANK_PATTERN = re.compile(r"(lastname|firstname|middlename|hisid|editorid|overreaderid|techid|visitid|"
                           r"orderid|mdid|operatorid|encounterid|accountid)$")
PATIENT_ID = frozenset({"patientid"})
CHARACTERISTICS = frozenset({"patientage", "ageunits", "gender", "sex", "years", "height", "weight",
                             "inch", "lb", "cm", "kg", "administrativegendercode"})
#: Attributes blanked wherever they appear.
BLANK_ATTRS = frozenset({"id", "machineid"})
#: Attributes holding a date (Philips YYYY-MM-DD).
DATE_ATTRS = frozenset({"date", "orderrequestdate", "dateprocessed"})
#: LOINC "Reported age" (an HL7 aECG control variable).
AGE_LOINC = "21612-7"
_TEXT_DATE_FORMATS = ("%m-%d-%Y", "%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y")


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _shift_any(value: str, days: int) -> str:
    for fmt in _TEXT_DATE_FORMATS:
        shifted = shift_text(value.strip(), fmt, days)
        if shifted is not None:
            return shifted
    return ""


def _shift_hl7(value: str, days: int) -> str:
    """An HL7 TS `YYYYMMDD[hhmm[ss]]...` moved by `days` (time of day kept)."""
    if len(value) < 8 or not value[:8].isdigit():
        return ""
    head = shift_text(value[:8], "%Y%m%d", days)
    return head + value[8:] if head else ""


class _Run:
    def __init__(self, keys: DeidKeys, days: int, pseudonym: str, keep: bool) -> None:
        self.keys, self.days, self.pseudonym, self.keep = keys, days, pseudonym, keep
        self.changes: dict[str, str] = {}

    def note(self, what: str, action: str) -> None:
        self.changes.setdefault(what, action)

    def walk(self, e: ET.Element, parents: tuple[str, ...]) -> None:
        name = _local(e.tag)
        parent = parents[-1] if parents else ""
        self._attributes(e, name, parent)
        text = (e.text or "").strip()
        if name in CHARACTERISTICS:
            if not self.keep and (text or e.attrib):
                e.text = "" if text else e.text
                for a in [a for a in e.attrib if _local(a) in ("code", "displayname", "value")]:
                    del e.attrib[a]
                self.note(name, "removed")
        elif name in PATIENT_ID or (name == "id" and parent == "trialsubject"):
            if name == "id":
                if e.get("extension"):
                    e.set("extension", self.pseudonym)
            elif text:
                e.text = self.pseudonym
            self.note(f"{parent}/{name}" if name == "id" else name, "pseudonym")
        elif name == "name" or name == "addr":
            for sub in list(e):
                e.remove(sub)
            if text or len(e):
                self.note(f"{parent}/{name}", "removed")
            e.text = ""
        elif name == "relatedobservation" and not self.keep and any(
                _local(c.tag) == "code" and c.get("code") == AGE_LOINC for c in e):
            for c in e:
                if _local(c.tag) == "value" and c.get("value"):
                    del c.attrib["value"]
                    self.note("reported age", "removed")
        elif name == "birthtime":
            e.attrib.pop("value", None)
            self.note(name, "removed")
        elif name == "racecode":
            e.attrib.clear()
            self.note(name, "removed")
        elif name == "id" and parents:
            if e.get("extension"):
                e.set("extension", self.keys.token(e.get("extension")))
                self.note(f"{parent}/id", "replaced")
            elif e.get("root") and not e.get("extension") and parent in ("annotatedecg", ""):
                e.set("root", self.keys.uid(e.get("root")))
                self.note("document id", "replaced")
        elif name.endswith("date") and text and name not in ("criteriaversiondate",):
            e.text = _shift_any(text, self.days)
            self.note(name, "date shifted" if e.text else "removed")
        elif text and (name in BLANK_TEXT or BLANK_PATTERN.search(name) is not None):
            if name == "value" and parent != "userdefine":
                pass
            elif name == "text" and parent not in ("subjectfindingcomment", "comment"):
                pass
            else:
                e.text = ""
                self.note(name, "removed")
        for child in e:
            self.walk(child, parents + (name,))

    def _attributes(self, e: ET.Element, name: str, parent: str) -> None:
        for attr in list(e.attrib):
            a = _local(attr)
            if a in BLANK_ATTRS and name != "id" and e.get(attr):
                e.set(attr, "")
                self.note(f"{name}@{a}", "removed")
            elif a in DATE_ATTRS and e.get(attr):
                e.set(attr, _shift_any(e.get(attr), self.days))
                self.note(f"{name}@{a}", "date shifted")
            elif a == "value" and name in ("center", "low", "high") and e.get(attr):
                e.set(attr, _shift_hl7(e.get(attr), self.days))
                self.note(f"{parent}/{name}@value", "date shifted")


def deid_xml(src: Path, dst: Path, keys: DeidKeys, pkey: str, *,
             keep_characteristics: bool = False) -> dict[str, Any]:
    """Write a de-identified copy of an ECG XML file (`pkey`: its patient key).

    Returns:
        {"patient_pseudonym", "changes": {element: action}} for the report.

    Raises:
        DeidError: the file cannot be parsed or written.
    """
    from engine.errors import CromotexError
    from engine.io.xml_common import parse_xml_bytes

    try:
        data = src.read_bytes()
        root = parse_xml_bytes(data, src, "ECG XML")
    except (OSError, CromotexError) as exc:
        raise DeidError(f"{src} could not be read as XML ({exc}); it was not exported.") from exc
    run = _Run(keys, keys.offset_days(pkey), keys.pseudonym(pkey), keep_characteristics)
    run.walk(root, ())
    _keep_prefixes(data)
    buf = io.BytesIO()
    ET.ElementTree(root).write(buf, encoding="utf-8", xml_declaration=True)
    try:
        dst.write_bytes(buf.getvalue())
    except OSError as exc:
        raise DeidError(f"Cannot write {dst} ({exc.strerror}).") from exc
    return {"patient_pseudonym": run.pseudonym, "changes": dict(sorted(run.changes.items()))}


def _keep_prefixes(data: bytes) -> None:
    """Register the file's namespace prefixes (a default namespace stays the default)."""
    try:
        for _, (prefix, uri) in ET.iterparse(io.BytesIO(data), events=("start-ns",)):
            if not re.fullmatch(r"ns\d+", prefix or ""):
                ET.register_namespace(prefix or "", uri)
    except (ET.ParseError, ValueError):
        pass
