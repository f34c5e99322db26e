import { createHash } from 'node:crypto';
import { checkMacSource, checkMacValue } from '../../src/gateways/ecpay/check-mac-value';
import {
  logisticsMac,
  parseRawFields,
  parseSignedAnswer,
  signLogistics,
  verifyLogisticsMac,
} from '../../src/gateways/ecpay-logistics/logistics-mac';

// Vectors of specs/ecpay-logistics.md §4.
const C2C = { hashKey: 'XBERn1YOvpM9nfZc', hashIv: 'h1ONHk4P4yqbl5LK' };
const B2C = { hashKey: '5294y06JbISpM5x9', hashIv: 'v77hoKGq4kWxNNIS' };

const M1: Record<string, string> = {
  MerchantID: '2000933',
  MerchantTradeNo: 'A20130312153023',
  MerchantTradeDate: '2013/03/12 15:30:23',
  LogisticsType: 'CVS',
  LogisticsSubType: 'FAMIC2C',
  GoodsAmount: '1000',
  IsCollection: 'N',
  ServerReplyURL: 'https://www.ecpay.com.tw/ServerReplyURL',
  SenderName: '寄件者姓名',
  ReceiverName: '收件者姓名',
  ReceiverStoreID: '001779',
};

const M2_BODY =
  '1|AllPayLogisticsID=199185&BookingNote=&CheckMacValue=5BA761C51C3197EA59B6E10EA57E8C6C&CVSPaymentNo=09936343518&CVSValidationNo=&GoodsAmount=200&LogisticsSubType=FAMIC2C&LogisticsType=CVS&MerchantID=2000933&MerchantTradeNo=abc01234567891234167&ReceiverAddress=&ReceiverCellPhone=0911429215&ReceiverEmail=&ReceiverName=收件人&ReceiverPhone=0911429215&RtnCode=300&RtnMsg=訂單處理中(已收到訂單資料)&UpdateStatusDate=2019/08/05 17:49:46';

const M3_BODY =
  '1|AllPayLogisticsID=158981&BookingNote=&CheckMacValue=5C5ECFEFB08C0525408D32C6538114DA&CVSPaymentNo=&CVSValidationNo=&GoodsAmount=110&LogisticsSubType=UNIMART&LogisticsType=CVS&MerchantID=2000132&MerchantTradeNo=GW1901041548427509&ReceiverAddress=&ReceiverCellPhone=0983337029&ReceiverEmail=&ReceiverName=Superuser&ReceiverPhone=&RtnCode=300&RtnMsg=訂單處理中(已收到訂單資料)&UpdateStatusDate=2019/01/04 15:48:42';

const S2: Record<string, string> = {
  MerchantID: '2000933',
  MerchantTradeNo: 'LBS20250101A1B2C3',
  MerchantTradeDate: '2025/01/02 09:00:00',
  LogisticsType: 'CVS',
  LogisticsSubType: 'UNIMARTC2C',
  GoodsAmount: '280',
  IsCollection: 'N',
  GoodsName: '珍珠奶茶等2件',
  SenderName: '陳大明',
  SenderCellPhone: '0911222333',
  ReceiverName: '王小美',
  ReceiverCellPhone: '0933222111',
  ReceiverStoreID: '131386',
  ServerReplyURL: 'https://shop.example.com/ecpay/logistics/status',
};

const S4: Record<string, string> = {
  MerchantID: '2000933',
  MerchantTradeNo: 'LBS20250101A1B2C3',
  RtnCode: '2067',
  RtnMsg: '買家已到店取貨',
  AllPayLogisticsID: '1718546',
  LogisticsType: 'CVS',
  LogisticsSubType: 'UNIMARTC2C',
  GoodsAmount: '280',
  UpdateStatusDate: '2025/01/05 18:20:11',
  ReceiverName: '王小美',
  ReceiverPhone: '',
  ReceiverCellPhone: '0933222111',
  ReceiverEmail: '',
  ReceiverAddress: '',
  CVSPaymentNo: 'C9680734',
  CVSValidationNo: '4551',
  BookingNote: '',
};

describe('logistics CheckMacValue (MD5) — official and real vectors', () => {
  test('M1: the official appendix example with the C2C stage keys', () => {
    expect(logisticsMac(M1, C2C)).toBe('692FD6E2CDB539CCDB7206C76DC239AD');
  });

  test('M1 with the ASCII names of the English listing gives the other (self-computed) value', () => {
    expect(logisticsMac({ ...M1, SenderName: 'SteveJones', ReceiverName: 'MarkHarrison' }, C2C)).toBe('754C5D1365035DA34D2CD91CC256F18C');
  });

  test('M2: a real stage Express/Create answer (FAMIC2C) verifies once the 1| prefix is removed, raw values', () => {
    const fields = parseSignedAnswer(M2_BODY.slice(2), C2C);
    expect(fields).not.toBeNull();
    expect(fields).toMatchObject({ AllPayLogisticsID: '199185', CVSPaymentNo: '09936343518', RtnCode: '300', ReceiverName: '收件人' });
    expect(fields!.UpdateStatusDate).toBe('2019/08/05 17:49:46');
    // With the prefix left on, the first field is named "1|AllPayLogisticsID" and the MAC fails.
    expect(parseSignedAnswer(M2_BODY, C2C)).toBeNull();
  });

  test('M3: a real stage Express/Create answer (UNIMART B2C) with the B2C keys; B2C has no CVSPaymentNo', () => {
    const fields = parseSignedAnswer(M3_BODY.slice(2), B2C);
    expect(fields).toMatchObject({ AllPayLogisticsID: '158981', CVSPaymentNo: '', LogisticsSubType: 'UNIMART' });
    expect(parseSignedAnswer(M3_BODY.slice(2), C2C)).toBeNull();
  });

  test('Q1: a real stage QueryLogisticsTradeInfo answer (UNIMARTC2C, found in public code, not in the spec) verifies raw, MAC last', () => {
    const body =
      'AllPayLogisticsID=199199&BookingNote=&GoodsAmount=200&GoodsName=百貨商品&HandlingCharge=5&LogisticsStatus=9999&LogisticsType=CVS_UNIMARTC2C&MerchantID=2000933&MerchantTradeNo=abc01234567891234161&ShipmentNo=G34233026887&TradeDate=2019/08/05 17:37:05&CheckMacValue=23E159CB546038F70B698338B0B7DA48';
    expect(parseSignedAnswer(body, C2C)).toMatchObject({ LogisticsType: 'CVS_UNIMARTC2C', LogisticsStatus: '9999', TradeDate: '2019/08/05 17:37:05' });
    expect(parseSignedAnswer(body.replace('HandlingCharge=5', 'HandlingCharge=6'), C2C)).toBeNull();
  });

  test('M4: third-party vector with the B2C keys', () => {
    expect(
      logisticsMac({ MerchantID: '2000132', LogisticsType: 'CVS', LogisticsSubType: 'UNIMART', MerchantTradeDate: '2025/01/01 12:00:00' }, B2C),
    ).toBe('545E6146FD45BDA683C88454DB34CE8D');
  });
});

describe('logistics CheckMacValue — the bot\'s own vectors (self-computed in the spec)', () => {
  test('S1: store map request', () => {
    const s1 = {
      MerchantID: '2000933',
      MerchantTradeNo: 'LBM20250101A1B2C3',
      LogisticsType: 'CVS',
      LogisticsSubType: 'UNIMARTC2C',
      IsCollection: 'N',
      ServerReplyURL: 'https://shop.example.com/ecpay/logistics/map-reply',
      ExtraData: 'ord_A1B2C3',
      Device: '1',
    };
    expect(logisticsMac(s1, C2C)).toBe('98D26708B31DF054CD9D63B286C9A86A');
  });

  test('S2: prepaid create, and its encoded signing string', () => {
    expect(logisticsMac(S2, C2C)).toBe('7573F81B57D466066EF6DB8BEF08DFD5');
    const source = checkMacSource(S2, C2C.hashKey, C2C.hashIv);
    expect(source.startsWith('hashkey%3dxbern1yovpm9nfzc%26goodsamount%3d280%26goodsname%3d%e7%8f%8d')).toBe(true);
    expect(source).toContain('merchanttradedate%3d2025%2f01%2f02+09%3a00%3a00');
  });

  test('S3: cash-on-pickup create adds CollectionAmount', () => {
    expect(logisticsMac({ ...S2, MerchantTradeNo: 'LBS20250101A1B2C4', IsCollection: 'Y', CollectionAmount: '280' }, C2C)).toBe(
      '4151C08C008E774DC55DCBAAE811BC54',
    );
  });

  test('S4: status notification, and its wire body parsed by URLSearchParams verifies', () => {
    expect(logisticsMac(S4, C2C)).toBe('D348534550C384AA29C21193A2FD3B32');
    const wire = new URLSearchParams({ ...S4, CheckMacValue: 'D348534550C384AA29C21193A2FD3B32' }).toString();
    expect(wire).toContain('RtnMsg=%E8%B2%B7%E5%AE%B6%E5%B7%B2%E5%88%B0%E5%BA%97%E5%8F%96%E8%B2%A8');
    expect(wire).toContain('UpdateStatusDate=2025%2F01%2F05+18%3A20%3A11');
    const parsed = Object.fromEntries(new URLSearchParams(wire));
    expect(verifyLogisticsMac(parsed, C2C)).toBe(true);
    expect(verifyLogisticsMac({ ...parsed, RtnCode: '2074' }, C2C)).toBe(false);
  });

  test('S5: query', () => {
    expect(logisticsMac({ MerchantID: '2000933', AllPayLogisticsID: '1718546', TimeStamp: '1736047211' }, C2C)).toBe(
      '827B0EB96BB7FE5892585AA93C48CC86',
    );
  });

  test('S6: 7-ELEVEN C2C print', () => {
    expect(
      logisticsMac({ MerchantID: '2000933', AllPayLogisticsID: '1717812', CVSPaymentNo: 'C9680734', CVSValidationNo: '4551' }, C2C),
    ).toBe('8AA7DB2B438BE97B8E20FAB3B6A1AAC3');
  });
});

describe('logistics CheckMacValue — negative vectors and verification rules', () => {
  const N1 = { MerchantID: '2000933', GoodsName: "Tom's~cup" };
  const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex').toUpperCase();
  const raw = `HashKey=${C2C.hashKey}&GoodsName=Tom's~cup&MerchantID=2000933&HashIV=${C2C.hashIv}`;

  test("N1: ' and ~ are percent-encoded as .NET does; the two common wrong encoders give the spec's wrong values", () => {
    expect(logisticsMac(N1, C2C)).toBe('72F8B92E83943D0746C5661128D9ED9F');
    // Bare encodeURIComponent leaves ' and ~ alone.
    expect(md5(encodeURIComponent(raw).replace(/%20/g, '+').toLowerCase())).toBe('2FABCFF0449D07EF9901BBB25646B8F0');
    // Python's quote_plus leaves ~ alone but encodes '.
    expect(md5(encodeURIComponent(raw).replace(/%20/g, '+').replace(/'/g, '%27').toLowerCase())).toBe('B2663D70AFFF6D2092057A2CE8842DE6');
  });

  test('an AIO-style SHA-256 MAC over the same fields is refused: logistics is MD5 only', () => {
    const sha = checkMacValue(S2, C2C.hashKey, C2C.hashIv, 'sha256');
    expect(sha).toHaveLength(64);
    expect(verifyLogisticsMac({ ...S2, CheckMacValue: sha }, C2C)).toBe(false);
  });

  test('a lower-case MAC verifies; a MAC made with other keys, or a missing one, does not', () => {
    expect(verifyLogisticsMac({ ...S2, CheckMacValue: '7573f81b57d466066ef6db8bef08dfd5' }, C2C)).toBe(true);
    expect(verifyLogisticsMac(signLogistics(S2, B2C), C2C)).toBe(false);
    expect(verifyLogisticsMac(S2, C2C)).toBe(false);
  });

  test('a transmitted empty field is part of the MAC; dropping it breaks verification', () => {
    const signed = signLogistics(S4, C2C);
    const { BookingNote: _dropped, ...withoutBookingNote } = signed;
    expect(verifyLogisticsMac(signed, C2C)).toBe(true);
    expect(verifyLogisticsMac(withoutBookingNote, C2C)).toBe(false);
  });

  test('raw answers split on & and the first =, with + and % kept as data', () => {
    expect(parseRawFields('A=1+1&B=x=y&C=%41&D=')).toEqual({ A: '1+1', B: 'x=y', C: '%41', D: '' });
    expect(parseRawFields('A=1&A=2')).toBeNull();
    expect(parseRawFields('A=1&garbage')).toBeNull();
    expect(parseRawFields('')).toBeNull();
  });

  test('a percent-encoded answer still verifies when its decoded values carry the MAC', () => {
    const signed = signLogistics({ MerchantID: '2000933', RtnMsg: '訂單處理中(已收到訂單資料)', UpdateStatusDate: '2025/01/02 09:00:00' }, C2C);
    const encoded = Object.entries(signed)
      .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
      .join('&');
    expect(parseSignedAnswer(encoded, C2C)).toEqual(signed);
    // A tampered value fails under both readings.
    expect(parseSignedAnswer(encoded.replace('2000933', '2000934'), C2C)).toBeNull();
  });
});
