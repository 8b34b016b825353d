//! ISO 3166-1 alpha-2: every officially assigned code, as a table.
//!
//! A [`Country`] is an index into [`CODES`], so the edge can use it directly as
//! a bitset slot. The table is sorted, which lets [`Country::parse`] binary
//! search it. The code (not the index) is what crosses the wire and disk, so
//! adding a code later never changes the meaning of stored data.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every officially assigned ISO 3166-1 alpha-2 code (249), sorted.
pub const CODES: [[u8; 2]; 249] = {
    const TABLE: &[u8] = b"\
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ \
DE DJ DK DM DO DZ \
EC EE EG EH ER ES ET \
FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY \
HK HM HN HR HT HU \
ID IE IL IM IN IO IQ IR IS IT \
JE JM JO JP \
KE KG KH KI KM KN KP KR KW KY KZ \
LA LB LC LI LK LR LS LT LU LV LY \
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
NA NC NE NF NG NI NL NO NP NR NU NZ \
OM \
PA PE PF PG PH PK PL PM PN PR PS PT PW PY \
QA \
RE RO RS RU RW \
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ \
UA UG UM US UY UZ \
VA VC VE VG VI VN VU \
WF WS \
YE YT \
ZA ZM ZW ";
    let mut codes = [[0u8; 2]; 249];
    let mut i = 0;
    while i < 249 {
        codes[i] = [TABLE[i * 3], TABLE[i * 3 + 1]];
        i += 1;
    }
    assert!(
        TABLE.len() == 249 * 3,
        "country table must hold exactly 249 codes"
    );
    codes
};

/// An officially assigned ISO 3166-1 alpha-2 country code.
/// Each two-letter pair's index in [`CODES`] (`A` to `Z`, then `A` to
/// `Z`), or [`NO_COUNTRY`]: a lookup instead of a search (a boot looks up
/// every country of every ad).
const BY_LETTERS: [u8; 26 * 26] = {
    let mut table = [NO_COUNTRY; 26 * 26];
    let mut index = 0;
    while index < CODES.len() {
        let [first, second] = CODES[index];
        table[(first - b'A') as usize * 26 + (second - b'A') as usize] = index as u8;
        index += 1;
    }
    table
};
const NO_COUNTRY: u8 = u8::MAX;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "[u8; 2]", into = "[u8; 2]")]
pub struct Country(u8);

impl Country {
    /// Number of distinct countries; the edge sizes its per-country bitsets by it.
    pub const COUNT: usize = CODES.len();

    /// Parses a two-letter code, case-insensitively. `UK` is accepted as an
    /// alias of `GB` (clients send it; ISO 3166 reserves it for exactly this
    /// use) and becomes `GB`: nothing else stores or shows `UK`. Decoding
    /// stored bytes does not take the alias, so stored data stays canonical.
    pub fn parse(code: &str) -> Option<Country> {
        match code.as_bytes() {
            [a, b] => {
                let code = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
                Self::from_code(if code == *b"UK" { *b"GB" } else { code })
            }
            _ => None,
        }
    }

    /// The country of an upper-case code in [`CODES`] (no alias): the
    /// form stored bytes hold.
    pub(crate) fn from_code(code: [u8; 2]) -> Option<Country> {
        let letter = |byte: u8| byte.is_ascii_uppercase().then(|| usize::from(byte - b'A'));
        match BY_LETTERS[letter(code[0])? * 26 + letter(code[1])?] {
            NO_COUNTRY => None,
            index => Some(Country(index)),
        }
    }

    /// Position in [`CODES`], from 0 to `COUNT - 1`.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The upper-case code, e.g. `"TW"`.
    pub fn as_str(self) -> &'static str {
        std::str::from_utf8(&CODES[self.index()]).expect("the country table is ASCII")
    }
}

impl TryFrom<[u8; 2]> for Country {
    type Error = String;

    fn try_from(code: [u8; 2]) -> Result<Self, Self::Error> {
        Self::from_code(code).ok_or_else(|| format!("unknown country code {code:?}"))
    }
}

impl From<Country> for [u8; 2] {
    fn from(country: Country) -> Self {
        CODES[country.index()]
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_upper_case() {
        assert!(CODES.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(CODES.iter().flatten().all(u8::is_ascii_uppercase));
    }

    #[test]
    fn parses_assigned_codes_case_insensitively() {
        assert_eq!(Country::parse("tw").unwrap().as_str(), "TW");
        assert_eq!(Country::parse("Jp").unwrap().as_str(), "JP");
        assert_eq!(Country::parse("ZW").unwrap().as_str(), "ZW");
        assert_eq!(Country::parse("AD").unwrap().index(), 0);
    }

    #[test]
    fn uk_is_an_alias_of_gb() {
        for code in ["UK", "uk", "Uk"] {
            assert_eq!(Country::parse(code).unwrap().as_str(), "GB", "{code}");
        }
        assert!(
            Country::try_from(*b"UK").is_err(),
            "stored bytes take no alias"
        );
    }

    #[test]
    fn rejects_unassigned_and_malformed_codes() {
        for code in ["", "T", "TWN", "XX", "EU", "ZZ", "AA", "1A", "é", "T "] {
            assert!(Country::parse(code).is_none(), "{code:?} must be rejected");
        }
    }
}
