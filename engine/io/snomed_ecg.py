"""SNOMED CT codes of ECG diagnoses as WFDB `# Dx:` comments carry them, and their terms.

Source: the PhysioNet/Computing in Cardiology Challenge 2021 mapping tables
`dx_mapping_scored.csv` and `dx_mapping_unscored.csv` (github
physionetchallenges/evaluation-2021 @ 09de8528), which cover every code in the
challenge's databases (CPSC, St Petersburg INCART, PTB, PTB-XL, Georgia, Chapman-Shaoxing,
Ningbo) and those of the 2020 challenge. Terms are the tables' "Dx" column with
capitalisation and obvious misspellings corrected ("countercolockwise" -> "counterclockwise");
the codes are unchanged. A code not in the table is kept as "SNOMED CT <code>".
"""

from __future__ import annotations

#: SNOMED CT code -> term (the 30 scored diagnoses first, then the 103 unscored ones).
SNOMED_ECG_TERMS: dict[str, str] = {
    # scored
    "164889003": "Atrial fibrillation", "164890007": "Atrial flutter", "6374002": "Bundle branch block",
    "426627000": "Bradycardia", "733534002": "Complete left bundle branch block",
    "713427006": "Complete right bundle branch block", "270492004": "1st degree AV block",
    "713426002": "Incomplete right bundle branch block", "39732003": "Left axis deviation",
    "445118002": "Left anterior fascicular block", "164909002": "Left bundle branch block",
    "251146004": "Low QRS voltages", "698252002": "Nonspecific intraventricular conduction disorder",
    "426783006": "Sinus rhythm", "284470004": "Premature atrial contraction", "10370003": "Pacing rhythm",
    "365413008": "Poor R wave progression", "427172004": "Premature ventricular contractions",
    "164947007": "Prolonged PR interval", "111975006": "Prolonged QT interval",
    "164917005": "Q wave abnormal", "47665007": "Right axis deviation",
    "59118001": "Right bundle branch block", "427393009": "Sinus arrhythmia",
    "426177001": "Sinus bradycardia", "427084000": "Sinus tachycardia",
    "63593006": "Supraventricular premature beats", "164934002": "T wave abnormal",
    "59931005": "T wave inversion", "17338001": "Ventricular premature beats",
    # unscored
    "233892002": "Accelerated atrial escape rhythm", "164951009": "Abnormal QRS",
    "251187003": "Atrial escape beat", "61277005": "Accelerated idioventricular rhythm",
    "426664006": "Accelerated junctional rhythm", "251139008": "Suspect arm ECG leads reversed",
    "57054005": "Acute myocardial infarction", "413444003": "Acute myocardial ischemia",
    "426434006": "Anterior ischemia", "54329005": "Anterior myocardial infarction",
    "251173003": "Atrial bigeminy", "195080001": "Atrial fibrillation and flutter",
    "195126007": "Atrial hypertrophy", "251268003": "Atrial pacing pattern", "106068003": "Atrial rhythm",
    "713422000": "Atrial tachycardia", "233917008": "AV block", "50799005": "Atrioventricular dissociation",
    "29320008": "Atrioventricular junctional rhythm",
    "251166008": "Atrioventricular node reentrant tachycardia",
    "233897008": "Atrioventricular reentrant tachycardia",
    "251170000": "Blocked premature atrial contraction", "418818005": "Brugada",
    "74615001": "Brady-tachy syndrome", "426749004": "Chronic atrial fibrillation",
    "251199005": "Counterclockwise rotation",
    "61721007": "Clockwise or counterclockwise vectorcardiographic loop", "698247007": "Cardiac dysrhythmia",
    "27885002": "Complete heart block", "204384007": "Congenital incomplete atrioventricular heart block",
    "53741008": "Coronary heart disease", "413844008": "Chronic myocardial ischemia",
    "251198002": "Clockwise rotation", "82226007": "Diffuse intraventricular block",
    "428417006": "Early repolarization", "13640000": "Fusion beats", "164942001": "fQRS wave",
    "84114007": "Heart failure", "368009": "Heart valve disorder", "251259000": "High T voltage",
    "251200008": "Indeterminate cardiac axis", "195042002": "2nd degree AV block",
    "426183003": "Mobitz type II atrioventricular block", "425419005": "Inferior ischaemia",
    "251120003": "Incomplete left bundle branch block", "704997005": "Inferior ST segment depression",
    "49260003": "Idioventricular rhythm", "426995002": "Junctional escape",
    "251164006": "Junctional premature complex", "426648003": "Junctional tachycardia",
    "253352002": "Left atrial abnormality", "67741000119109": "Left atrial enlargement",
    "446813000": "Left atrial hypertrophy", "425623009": "Lateral ischaemia",
    "445211001": "Left posterior fascicular block", "164873001": "Left ventricular hypertrophy",
    "55827005": "Left ventricular high voltage", "370365005": "Left ventricular strain",
    "164865005": "Myocardial infarction", "164861001": "Myocardial ischemia",
    "54016002": "Mobitz type I Wenckebach atrioventricular block",
    "428750005": "Nonspecific ST-T abnormality", "164867002": "Old myocardial infarction",
    "282825002": "Paroxysmal atrial fibrillation", "251205003": "Prolonged P wave",
    "67198005": "Paroxysmal supraventricular tachycardia", "425856008": "Paroxysmal ventricular tachycardia",
    "164912004": "P wave change", "253339007": "Right atrial abnormality", "164921003": "R wave abnormal",
    "446358003": "Right atrial hypertrophy", "67751000119106": "Right atrial high voltage",
    "314208002": "Rapid atrial fibrillation", "89792004": "Right ventricular hypertrophy",
    "17366009": "Sinus atrium to atrial wandering rhythm", "65778007": "Sinoatrial block",
    "5609005": "Sinus arrest", "60423000": "Sinus node dysfunction", "49578007": "Shortened PR interval",
    "77867006": "Decreased QT interval", "55930002": "ST changes", "429622005": "ST depression",
    "164931005": "ST elevation", "164930006": "ST interval abnormal",
    "251168009": "Supraventricular bigeminy",
    "426761007": "Supraventricular tachycardia", "266257000": "Transient ischemic attack",
    "251223006": "Tall P wave", "164937009": "U wave abnormal", "11157007": "Ventricular bigeminy",
    "164884008": "Ventricular ectopics", "75532003": "Ventricular escape beat",
    "81898007": "Ventricular escape rhythm", "164896001": "Ventricular fibrillation",
    "111288001": "Ventricular flutter", "266249003": "Ventricular hypertrophy",
    "195060002": "Ventricular pre-excitation", "251266004": "Ventricular pacing pattern",
    "251182009": "Paired ventricular premature complexes", "164895002": "Ventricular tachycardia",
    "251180001": "Ventricular trigeminy", "195101003": "Wandering atrial pacemaker",
    "74390002": "Wolff-Parkinson-White pattern",
}


def snomed_term(code: str) -> str:
    """The term of an ECG diagnosis code ("164873001" -> "Left ventricular hypertrophy"),
    or "SNOMED CT <code>" for a code not in the table."""
    code = str(code).strip()
    return SNOMED_ECG_TERMS.get(code, f"SNOMED CT {code}")
