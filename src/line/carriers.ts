import { CARRIER_LABEL } from '../texts';

/**
 * Carriers a shipped order can name, with their public tracking pages. Only pages whose address we
 * are sure of: T-Cat and Chunghwa Post take the tracking number in the address; HCT, 7-ELEVEN and
 * FamilyMart have a lookup page where the shopper pastes the number (the shipped bubble copies it).
 * A carrier we do not know gets no link, only the copyable number.
 */
export interface Carrier {
  label: string;
  /** The tracking page for this number, or null when the carrier has none we trust. */
  trackingUrl: (trackingNo: string) => string | null;
}

const byNumber = (prefix: string) => (no: string) => `${prefix}${encodeURIComponent(no)}`;
const page = (url: string) => () => url;
const none = () => null;

const CARRIERS: Array<Carrier & { aliases: string[] }> = [
  {
    label: CARRIER_LABEL.tcat,
    aliases: ['tcat', 't-cat', '黑貓', '黑貓宅急便', '宅急便', '統一速達'],
    trackingUrl: byNumber('https://www.t-cat.com.tw/Inquire/TraceDetail.aspx?BillID='),
  },
  {
    label: CARRIER_LABEL.post,
    aliases: ['post', 'chunghwapost', '中華郵政', '郵局', '郵政', '郵寄'],
    trackingUrl: byNumber('https://trackings.post.gov.tw/?id='),
  },
  {
    label: CARRIER_LABEL.hct,
    aliases: ['hct', '新竹物流', '新竹貨運'],
    trackingUrl: page('https://www.hct.com.tw/Search/SearchGoods_n.aspx'),
  },
  {
    label: CARRIER_LABEL.seven,
    // ECPay logistics subtypes too (UNIMART, UNIMARTC2C, UNIMARTFREEZE).
    aliases: ['711', '7-11', '7-eleven', '7eleven', 'seven', '統一超商', '交貨便', '賣貨便', 'unimart', 'unimartc2c', 'unimartfreeze'],
    trackingUrl: page('https://eservice.7-11.com.tw/e-tracking/search.aspx'),
  },
  {
    label: CARRIER_LABEL.family,
    aliases: ['family', 'familymart', 'fami', 'famic2c', '全家', '全家便利商店', '全家店到店'],
    trackingUrl: page('https://www.famiport.com.tw/Web_Famiport/page/process.aspx'),
  },
  { label: CARRIER_LABEL.hilife, aliases: ['hilife', 'hilifec2c', '萊爾富'], trackingUrl: none },
  { label: CARRIER_LABEL.ok, aliases: ['ok', 'okmart', 'okmartc2c', 'ok超商'], trackingUrl: none },
];

const normalize = (s: string) => s.normalize('NFKC').toLowerCase().replace(/[\s_]/g, '');

/** The carrier the owner named (a code, an ECPay logistics subtype or its Chinese name), if we know it. */
export function findCarrier(name: string | null | undefined): Carrier | null {
  if (!name) return null;
  const n = normalize(name);
  return CARRIERS.find((c) => c.aliases.some((a) => normalize(a) === n)) ?? null;
}
