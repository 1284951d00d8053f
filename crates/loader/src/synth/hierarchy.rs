//! Patient, study and series: the levels instances share.

use rand::Rng;
use rand::seq::IndexedRandom;

use super::Modality;

/// The patient-level attributes of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    /// Patient's Name (0010,0010), `FAMILY^GIVEN`.
    pub name: String,
    /// Patient ID (0010,0020).
    pub id: String,
    /// Patient's Birth Date (0010,0030), `YYYYMMDD`.
    pub birth_date: String,
    /// Patient's Sex (0010,0040): `F`, `M` or `O`.
    pub sex: String,
}

/// The study-level attributes of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Study {
    /// Study Instance UID (0020,000D).
    pub instance_uid: String,
    /// Study ID (0020,0010).
    pub id: String,
    /// Study Date (0008,0020), `YYYYMMDD`.
    pub date: String,
    /// Study Time (0008,0030), `HHMMSS`.
    pub time: String,
    /// Accession Number (0008,0050).
    pub accession_number: String,
    /// Study Description (0008,1030).
    pub description: String,
    /// Referring Physician's Name (0008,0090).
    pub referring_physician: String,
    /// Institution Name (0008,0080).
    pub institution: String,
}

/// The series-level attributes of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// Series Instance UID (0020,000E).
    pub instance_uid: String,
    /// Series Number (0020,0011).
    pub number: u32,
    /// Series Description (0008,103E).
    pub description: String,
    /// Modality (0008,0060) of every instance in the series.
    pub modality: Modality,
}

const FAMILY: &[&str] = &[
    "DOE",
    "SMITH",
    "GARCIA",
    "NGUYEN",
    "MUELLER",
    "ROSSI",
    "KOWALSKI",
    "OKAFOR",
    "TANAKA",
    "JOHANSSON",
    "MARTIN",
    "PATEL",
    "SILVA",
    "BROWN",
    "DUBOIS",
    "IVANOVA",
];
const GIVEN_F: &[&str] = &[
    "JANE", "MARIA", "AIKO", "FATIMA", "INGRID", "SOFIA", "GRACE", "LEA",
];
const GIVEN_M: &[&str] = &[
    "JOHN", "THANH", "LUCA", "PIOTR", "CHUKWU", "HANS", "RAVI", "TOM",
];
const PHYSICIANS: &[&str] = &[
    "HOUSE^GREGORY^^DR",
    "QUINN^MICHAELA^^DR",
    "WATSON^JOHN^H^DR",
    "CHEN^LI^^DR",
    "",
];
const INSTITUTIONS: &[&str] = &[
    "Riverside General Hospital",
    "Northgate Eye Clinic",
    "St. Anne University Medical Center",
    "Lakeview Orthopaedic Institute",
];

fn date(rng: &mut impl Rng, years: std::ops::RangeInclusive<u32>) -> String {
    // Day 1..=28 keeps every month valid without a calendar.
    format!(
        "{:04}{:02}{:02}",
        rng.random_range(years),
        rng.random_range(1..=12),
        rng.random_range(1..=28)
    )
}

fn pick<'a>(rng: &mut impl Rng, choices: &[&'a str]) -> &'a str {
    choices.choose(rng).copied().unwrap_or_default()
}

impl Patient {
    /// A fictitious patient.
    pub fn random(rng: &mut impl Rng) -> Self {
        let female = rng.random_bool(0.5);
        let given = pick(rng, if female { GIVEN_F } else { GIVEN_M });
        Self {
            name: format!("{}^{given}", pick(rng, FAMILY)),
            id: format!("MRN{:07}", rng.random_range(0..10_000_000)),
            birth_date: date(rng, 1935..=2015),
            sex: if female { "F" } else { "M" }.to_string(),
        }
    }
}

impl Study {
    /// A study of `modality` with a description such a department would write.
    pub fn random(rng: &mut impl Rng, modality: Modality) -> Self {
        let description = pick(rng, study_descriptions(modality));
        Self {
            instance_uid: dimse::uid_from_rng(rng),
            id: format!("{}", rng.random_range(1000..100_000)),
            date: date(rng, 2021..=2025),
            time: format!(
                "{:02}{:02}{:02}",
                rng.random_range(7..=19),
                rng.random_range(0..60),
                rng.random_range(0..60)
            ),
            accession_number: format!("ACC{:08}", rng.random_range(0..100_000_000)),
            description: description.to_string(),
            referring_physician: pick(rng, PHYSICIANS).to_string(),
            institution: pick(rng, INSTITUTIONS).to_string(),
        }
    }
}

impl Series {
    /// Series number `number` of `modality`, with a typical description.
    pub fn random(rng: &mut impl Rng, modality: Modality, number: u32) -> Self {
        Self {
            instance_uid: dimse::uid_from_rng(rng),
            number,
            description: pick(rng, series_descriptions(modality)).to_string(),
            modality,
        }
    }

    /// The same series with another description (e.g. one containing "GPA" for routing tests).
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }
}

fn study_descriptions(modality: Modality) -> &'static [&'static str] {
    match modality {
        Modality::Ct => &[
            "CT CHEST WO CONTRAST",
            "CT ABDOMEN PELVIS W CONTRAST",
            "CT HEAD WO",
        ],
        Modality::Mr => &[
            "MRI BRAIN W WO CONTRAST",
            "MRI KNEE LEFT WO",
            "MRI LUMBAR SPINE",
        ],
        Modality::Opv | Modality::Opt | Modality::Op => &[
            "OPHTHALMOLOGY EXAM",
            "GLAUCOMA FOLLOW-UP",
            "RETINA EVALUATION",
        ],
        Modality::Es => &["COLONOSCOPY", "UPPER GI ENDOSCOPY", "SIGMOIDOSCOPY"],
        Modality::Dx => &["XR CHEST 2 VIEWS", "XR KNEE 3 VIEWS RIGHT", "XR HIP LEFT"],
        Modality::Cr => &["XR HAND 3 VIEWS", "XR FOOT 2 VIEWS", "XR WRIST"],
        Modality::Us => &["US ABDOMEN COMPLETE", "US THYROID", "US RENAL"],
    }
}

fn series_descriptions(modality: Modality) -> &'static [&'static str] {
    match modality {
        Modality::Ct => &["AXIAL 5.0 MM", "AX 1.25MM STD", "CORONAL MPR"],
        Modality::Mr => &["AX T2 FLAIR", "SAG T1", "COR PD FS"],
        Modality::Opv => &["SITA Standard 24-2", "SITA Fast 30-2", "SITA Standard 10-2"],
        Modality::Opt => &[
            "Macular Cube 512x128",
            "Optic Disc Cube 200x200",
            "HD 5 Line Raster",
        ],
        Modality::Op => &["Color Fundus", "Red Free", "Fundus Autofluorescence"],
        Modality::Es => &["Colonoscopy Images", "Gastroscopy Images"],
        Modality::Dx => &["PA", "LATERAL", "AP"],
        Modality::Cr => &["HAND PA", "HAND OBLIQUE", "FOOT AP"],
        Modality::Us => &["Liver", "Kidney Right", "Thyroid Transverse"],
    }
}
