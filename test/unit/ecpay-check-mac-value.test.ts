import { createHash } from 'node:crypto';
import {
  checkMacSource,
  checkMacValue,
  ecpayUrlEncode,
  verifyCheckMacValue,
} from '../../src/gateways/ecpay/check-mac-value';
import { parseEcpayRawBody } from '../../src/gateways/ecpay/ecpay-client';

// Vectors from specs/ecpay-aio.md §4.
const STAGE = { key: 'pwFHCqoQZGmho4w6', iv: 'EkRm7iFT261dpevs' };
const LEGACY = { key: '5294y06JbISpM5x9', iv: 'v77hoKGq4kWxNNIS' };

const O1: Record<string, string> = {
  TradeDesc: '促銷方案',
  PaymentType: 'aio',
  MerchantTradeDate: '2023/03/12 15:30:23',
  MerchantTradeNo: 'ecpay20230312153023',
  MerchantID: '3002607',
  ReturnURL: 'https://www.ecpay.com.tw/receive.php',
  ItemName: 'Apple iphone 15',
  TotalAmount: '30000',
  ChoosePayment: 'ALL',
  EncryptType: '1',
};

const O3 = (merchantTradeNo: string): Record<string, string> => ({
  MerchantID: '3002607',
  MerchantTradeNo: merchantTradeNo,
  MerchantTradeDate: '2025/03/04 00:00:00',
  PaymentType: 'aio',
  TotalAmount: '100',
  TradeDesc: '訂單測試',
  ItemName: '範例商品',
  ReturnURL: ' https://5569-211-23-76-78.ngrok-free.app/returnurl.php',
  ChoosePayment: 'ALL',
  EncryptType: '1',
});

/** R1/R2: the NeedExtraPaidInfo=Y credit notification shape, 46 fields + CheckMacValue. */
function extraPaidPayload(v: Record<string, string>): Record<string, string> {
  const empty = [
    'AlipayID', 'AlipayTradeNo', 'ATMAccBank', 'ATMAccNo', 'CustomField1', 'CustomField2', 'CustomField3',
    'CustomField4', 'ExecTimes', 'Frequency', 'PayFrom', 'PaymentNo', 'PeriodAmount', 'PeriodType', 'StoreID',
    'TenpayTradeNo', 'TotalSuccessAmount', 'TotalSuccessTimes', 'WebATMAccBank', 'WebATMAccNo', 'WebATMBankName',
  ];
  return {
    ...Object.fromEntries(empty.map((n) => [n, ''])),
    auth_code: '777777',
    card4no: '2222',
    card6no: '431195',
    eci: '0',
    red_dan: '0',
    red_de_amt: '0',
    red_ok_amt: '0',
    red_yet: '0',
    SimulatePaid: '0',
    staed: '0',
    stage: '0',
    stast: '0',
    PaymentType: 'Credit_CreditCard',
    RtnCode: '1',
    ...v,
  };
}

const R1 = extraPaidPayload({
  amount: '80800',
  gwsr: '13955622',
  MerchantID: '3002607',
  MerchantTradeNo: '2025101423404152',
  PaymentDate: '2025/10/14 23:35:34',
  PaymentTypeChargeFee: '1981',
  process_date: '2025/10/14 23:35:34',
  RtnMsg: '交易成功',
  TradeAmt: '80800',
  TradeDate: '2025/10/14 23:35:01',
  TradeNo: '2510142335016248',
  CheckMacValue: 'EE759D314B59ACB73C8B9129620F90964D78C3EDE06B2661C63BB984AC41AC3E',
});

const R2 = extraPaidPayload({
  amount: '1000',
  gwsr: '12793002',
  MerchantID: '2000132',
  MerchantTradeNo: 'ECPay1693271370',
  PaymentDate: '2023/08/29 09:11:00',
  PaymentTypeChargeFee: '20',
  process_date: '2023/08/29 09:11:00',
  RtnMsg: 'Succeeded',
  TradeAmt: '1000',
  TradeDate: '2023/08/29 09:09:32',
  TradeNo: '2308290909327284',
  CheckMacValue: 'F73AFA6CE619312B0EABFCF768BD2BFC0D6CDF954AE56D752EA55AB183EC938B',
});

const S2: Record<string, string> = {
  MerchantID: '3002607',
  Zeta: "A-Z a_z.0!9*(x)~y'q",
  alpha: '@#$%^&=+;?/\\<>`[]{}:",|',
  Mid: '中文 測試',
};

const S3_REQUEST: Record<string, string> = { MerchantID: '3002607', MerchantTradeNo: 'LB20250101A1B2C3', TimeStamp: '1735706096' };

const S4: Record<string, string> = {
  MerchantID: '3002607',
  MerchantTradeNo: 'LB20250101A1B2C3',
  StoreID: '',
  RtnCode: '2',
  RtnMsg: 'Get VirtualAccount Succeeded',
  TradeNo: '2501011235108001',
  TradeAmt: '1280',
  PaymentType: 'ATM_TAISHIN',
  TradeDate: '2025/01/01 12:35:10',
  CustomField1: 'Uabc123def456',
  CustomField2: '',
  CustomField3: '',
  CustomField4: '',
  BankCode: '812',
  vAccount: '9103522175887271',
  ExpireDate: '2025/01/04',
};
const S4_MAC = 'A9BC243ADFF6F46FB9313FEAF10315397609BF37BD18223DFB12F04D748FB453';

/** Flips one hex character of a MAC. */
function tamper(mac: string): string {
  const i = 10;
  return mac.slice(0, i) + (mac[i] === 'A' ? 'B' : 'A') + mac.slice(i + 1);
}

describe('ecpayUrlEncode (.NET HttpUtility.UrlEncode semantics)', () => {
  it('keeps A-Z a-z 0-9 - _ . ! * ( ), turns space into +, escapes ~ and \' and everything else', () => {
    expect(ecpayUrlEncode("Az09-_.!*() ~'")).toBe('Az09-_.!*()+%7E%27');
    expect(ecpayUrlEncode('@#$%^&=+;?/\\<>`[]{}:",|')).toBe(
      '%40%23%24%25%5E%26%3D%2B%3B%3F%2F%5C%3C%3E%60%5B%5D%7B%7D%3A%22%2C%7C',
    );
    expect(ecpayUrlEncode('促')).toBe('%E4%BF%83');
  });
});

describe('official vectors', () => {
  it('O1: the AioCheckOut example from the CheckMacValue appendix, including the intermediate string', () => {
    expect(checkMacSource(O1, STAGE.key, STAGE.iv)).toBe(
      'hashkey%3dpwfhcqoqzgmho4w6%26choosepayment%3dall%26encrypttype%3d1%26itemname%3dapple+iphone+15%26merchantid%3d3002607%26merchanttradedate%3d2023%2f03%2f12+15%3a30%3a23%26merchanttradeno%3decpay20230312153023%26paymenttype%3daio%26returnurl%3dhttps%3a%2f%2fwww.ecpay.com.tw%2freceive.php%26totalamount%3d30000%26tradedesc%3d%e4%bf%83%e9%8a%b7%e6%96%b9%e6%a1%88%26hashiv%3dekrm7ift261dpevs',
    );
    expect(checkMacValue(O1, STAGE.key, STAGE.iv)).toBe('6C51C9E6888DE861FD62FB1DD17029FC742634498FD813DC43D4243B5685B840');
  });

  it('O2: the simulated ReturnURL payload of the official PHP SDK', () => {
    const o2 = {
      MerchantID: '3002607',
      MerchantTradeNo: 'WPLL4E341E122DB44D62',
      PaymentDate: '2019/05/09 00:01:21',
      PaymentType: 'Credit_CreditCard',
      PaymentTypeChargeFee: '1',
      RtnCode: '1',
      RtnMsg: '交易成功',
      SimulatePaid: '0',
      TradeAmt: '500',
      TradeDate: '2019/05/09 00:00:18',
      TradeNo: '1905090000188278',
    };
    const mac = '6E7F053EF215FC851A050A2FF01D72CBE440EA138DC3E905647985DDF236FD25';
    expect(checkMacValue(o2, STAGE.key, STAGE.iv)).toBe(mac);
    expect(verifyCheckMacValue({ ...o2, CheckMacValue: mac }, STAGE.key, STAGE.iv)).toBe(true);
  });

  it('O3: both support-site values, with the leading space of ReturnURL kept', () => {
    expect(checkMacValue(O3('order20250304001'), STAGE.key, STAGE.iv)).toBe(
      'B251AD005829A4072192E495BF484DCF3830D75382AB34DF46F8F3AA8F794940',
    );
    expect(checkMacValue(O3('order202503040001'), STAGE.key, STAGE.iv)).toBe(
      '54B1661DE89951772A94FD0F5639FE5CEDA91311CA42021FD8D9DD4170A965D9',
    );
    const trimmed = { ...O3('order20250304001'), ReturnURL: 'https://5569-211-23-76-78.ngrok-free.app/returnurl.php' };
    expect(checkMacValue(trimmed, STAGE.key, STAGE.iv)).not.toBe(
      'B251AD005829A4072192E495BF484DCF3830D75382AB34DF46F8F3AA8F794940',
    );
  });

  it('O4: the MD5 variant with an empty RtnMsg included', () => {
    const o4 = {
      RtnCode: '1',
      RtnMsg: '',
      IA_Allow_No: '1909181313013546',
      IA_Invoice_No: 'UV11100019',
      IA_Date: '2019-09-18 13:13:23',
      IIS_Remain_Allowance_Amt: '0',
    };
    const key = 'ejCk326UnaZWKisg';
    const iv = 'q9jcZX8Ib9LM8wYk';
    expect(checkMacValue(o4, key, iv, 'md5')).toBe('50A276E71DAE26343013958B405EEEA0');
    // Verification picks MD5 from the 32-character length.
    expect(verifyCheckMacValue({ ...o4, CheckMacValue: '50a276e71dae26343013958b405eeea0' }, key, iv)).toBe(true);
    const { RtnMsg: _dropped, ...withoutEmpty } = o4;
    expect(checkMacValue(withoutEmpty, key, iv, 'md5')).not.toBe('50A276E71DAE26343013958B405EEEA0');
  });
});

describe('real ECPay-generated stage messages', () => {
  it('R1: a 47-field ReturnURL with mixed-case names and many empty values verifies', () => {
    expect(Object.keys(R1)).toHaveLength(47);
    expect(checkMacValue(R1, STAGE.key, STAGE.iv)).toBe(R1.CheckMacValue);
    expect(verifyCheckMacValue(R1, STAGE.key, STAGE.iv)).toBe(true);
  });

  it('R2: an OrderResultURL post for the legacy merchant verifies', () => {
    expect(Object.keys(R2)).toHaveLength(47);
    expect(verifyCheckMacValue(R2, LEGACY.key, LEGACY.iv)).toBe(true);
    expect(verifyCheckMacValue(R2, STAGE.key, STAGE.iv)).toBe(false);
  });

  it('R3: both QueryTradeInfo answers verify after the "+" → "%2B" parse, and the request MAC matches', () => {
    const first =
      'CustomField1=&CustomField2=&CustomField3=&CustomField4=&HandlingCharge=1&ItemName=Apple iphone 7 手機殼&MerchantID=2000132&MerchantTradeNo=ecpay20180504112423&PaymentDate=2018/05/04 11:27:39&PaymentType=Credit_CreditCard&PaymentTypeChargeFee=1&StoreID=&TradeAmt=1000&TradeDate=2018/05/04 11:24:57&TradeNo=1805041124578172&TradeStatus=1&CheckMacValue=7FED9171711B628633FDBA39EBEE159E2E9A1A6AEB9ACD87B105778EECE2FB06';
    const second =
      'CustomField1=&CustomField2=&CustomField3=&CustomField4=&HandlingCharge=5&ItemName=廣志足白浴露&MerchantID=2000132&MerchantTradeNo=SS20230627162129&PaymentDate=2023/06/27 16:22:26&PaymentType=Credit_CreditCard&PaymentTypeChargeFee=5&StoreID=&TradeAmt=10&TradeDate=2023/06/27 16:21:31&TradeNo=2306271621311944&TradeStatus=1&CheckMacValue=495808D884C441D063293C739D2001CB82905B8AD33EB1BC3FD70A0686697487';
    const a = parseEcpayRawBody(first);
    expect(a.ItemName).toBe('Apple iphone 7 手機殼');
    expect(a.PaymentDate).toBe('2018/05/04 11:27:39');
    expect(verifyCheckMacValue(a, LEGACY.key, LEGACY.iv)).toBe(true);
    const b = parseEcpayRawBody(second);
    expect(b.ItemName).toBe('廣志足白浴露');
    expect(verifyCheckMacValue(b, LEGACY.key, LEGACY.iv)).toBe(true);

    expect(
      checkMacValue(
        { MerchantID: '2000132', MerchantTradeNo: 'ecpay20180504112423', TimeStamp: '1525410372' },
        LEGACY.key,
        LEGACY.iv,
      ),
    ).toBe('48ABB4DBF2365897B2A17C48EBCBA82274E7D7DE79F1F955115C4258482A045B');
  });

  it('keeps a literal "+" of a raw QueryTradeInfo value as data', () => {
    expect(parseEcpayRawBody('ItemName=A+B x1&TradeStatus=0').ItemName).toBe('A+B x1');
  });
});

describe('self-computed vectors', () => {
  it('S1: a realistic bot order with an empty CustomField2 and a query string in ClientBackURL', () => {
    const s1 = {
      MerchantID: '3002607',
      MerchantTradeNo: 'LB20250101A1B2C3',
      MerchantTradeDate: '2025/01/01 12:34:56',
      PaymentType: 'aio',
      TotalAmount: '1280',
      TradeDesc: 'LINE shop order',
      ItemName: '珍珠奶茶 x2#雞排 (大) x1',
      ReturnURL: 'https://shop.example.com/ecpay/return',
      ChoosePayment: 'Credit',
      EncryptType: '1',
      ClientBackURL: 'https://shop.example.com/orders/LB20250101A1B2C3?from=ecpay&lang=zh-TW',
      OrderResultURL: 'https://shop.example.com/ecpay/result',
      NeedExtraPaidInfo: 'N',
      CustomField1: 'Uabc123def456',
      CustomField2: '',
    };
    const source = checkMacSource(s1, STAGE.key, STAGE.iv);
    expect(source).toContain('%26itemname%3d%e7%8f%8d%e7%8f%a0%e5%a5%b6%e8%8c%b6+x2%23%e9%9b%9e%e6%8e%92+(%e5%a4%a7)+x1%26');
    expect(source).toContain('%3ffrom%3decpay%26lang%3dzh-tw%26');
    expect(checkMacValue(s1, STAGE.key, STAGE.iv)).toBe('A83E41B3E4FDA7A57347FD7F806FDF09A89C1C5F49D217B860E418CD679C399F');
  });

  it('S2: the encoder stress test', () => {
    expect(checkMacSource(S2, STAGE.key, STAGE.iv)).toBe(
      "hashkey%3dpwfhcqoqzgmho4w6%26alpha%3d%40%23%24%25%5e%26%3d%2b%3b%3f%2f%5c%3c%3e%60%5b%5d%7b%7d%3a%22%2c%7c%26merchantid%3d3002607%26mid%3d%e4%b8%ad%e6%96%87+%e6%b8%ac%e8%a9%a6%26zeta%3da-z+a_z.0!9*(x)%7ey%27q%26hashiv%3dekrm7ift261dpevs",
    );
    expect(checkMacValue(S2, STAGE.key, STAGE.iv)).toBe('8CA787FDA0E5E87C6BE93F6145C29BF99E6AB3120089D0628DF99E32D71254B8');
  });

  it('S3: a QueryTradeInfo request', () => {
    expect(
      checkMacValue(
        { MerchantID: '3002607', MerchantTradeNo: 'LB20250101A1B2C3', TimeStamp: '1735706096' },
        STAGE.key,
        STAGE.iv,
      ),
    ).toBe('6240721B68598021C9C7205E9F1CEE9D6B5AD63C337C87555B277BCDB3A210C8');
  });

  it('S4: an ATM PaymentInfoURL payload, also after a round trip through a form-encoded body', () => {
    expect(checkMacValue(S4, STAGE.key, STAGE.iv)).toBe(S4_MAC);
    const body = new URLSearchParams({ ...S4, CheckMacValue: S4_MAC }).toString();
    expect(body).toContain('RtnMsg=Get+VirtualAccount+Succeeded');
    expect(body).toContain('TradeDate=2025%2F01%2F01+12%3A35%3A10');
    const parsed = Object.fromEntries(new URLSearchParams(body));
    expect(parsed).toEqual({ ...S4, CheckMacValue: S4_MAC });
    expect(verifyCheckMacValue(parsed, STAGE.key, STAGE.iv)).toBe(true);
  });
});

describe('negative vectors and verification', () => {
  /** The common mistakes of §4.4, reproduced independently of our implementation. */
  function naiveMac(params: Record<string, string>, key: string, iv: string, opts: { caseSensitiveSort?: boolean; phpReplacements?: boolean }) {
    const names = Object.keys(params).filter((n) => n !== 'CheckMacValue');
    if (opts.caseSensitiveSort) names.sort();
    else names.sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0));
    const raw = `HashKey=${key}&${names.map((n) => `${n}=${params[n]}`).join('&')}&HashIV=${iv}`;
    let enc = encodeURIComponent(raw);
    if (opts.phpReplacements) {
      enc = enc
        .replace(/%2d/gi, '-')
        .replace(/%5f/gi, '_')
        .replace(/%2e/gi, '.')
        .replace(/%21/gi, '!')
        .replace(/%2a/gi, '*')
        .replace(/%28/gi, '(')
        .replace(/%29/gi, ')')
        .replace(/%20/gi, '+');
    } else {
      enc = ecpayUrlEncode(raw);
    }
    return createHash('sha256').update(enc.toLowerCase()).digest('hex').toUpperCase();
  }

  it('N1: a case-sensitive sort reproduces the wrong value; ours gives the right one', () => {
    const wrong = 'D5CD6DD93AA71770700DBC678B22EA5161D0C6A86D5DBE181F5E30D77BFF9ED0';
    expect(naiveMac(R1, STAGE.key, STAGE.iv, { caseSensitiveSort: true })).toBe(wrong);
    expect(checkMacValue(R1, STAGE.key, STAGE.iv)).not.toBe(wrong);
    expect(verifyCheckMacValue({ ...R1, CheckMacValue: wrong }, STAGE.key, STAGE.iv)).toBe(false);
  });

  it('N2: encodeURIComponent plus the PHP replacements leaves ~ and \' raw and gets S2 wrong', () => {
    const wrong = 'C1DB823C0A9651C2D6B7DF1DB655121755CF346879D7CF97918DC533C2BC4543';
    expect(naiveMac(S2, STAGE.key, STAGE.iv, { phpReplacements: true })).toBe(wrong);
    expect(checkMacValue(S2, STAGE.key, STAGE.iv)).not.toBe(wrong);
  });

  it('N3: the signing string built with JSON.stringify (ecpay_aio_nodejs 1.2.2) backslash-escapes " and \\ and gets S2 wrong', () => {
    // The SDK's recipe, rebuilt here: sort by lower-cased name, JSON.stringify the object,
    // lower-case it, turn the JSON punctuation into = and &, wrap in HashKey/HashIV, encode.
    const jsonMac = (params: Record<string, string>, key: string, iv: string) => {
      const ordered: Record<string, string> = {};
      for (const n of Object.keys(params).sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()))) ordered[n] = params[n]!;
      const body = JSON.stringify(ordered).toLowerCase().replace(/":"/g, '=').replace(/","|{"|"}/g, '&');
      const enc = encodeURIComponent(`HashKey=${key}${body}HashIV=${iv}`)
        .toLowerCase()
        .replace(/'/g, '%27')
        .replace(/~/g, '%7e')
        .replace(/%20/g, '+');
      return createHash('sha256').update(enc).digest('hex').toUpperCase();
    };
    const wrong = '2EC6CEDF1FE84A6D7F9E281CF2721F09DFE21A36D2C13E501982B5ACD0ACFB9A';
    expect(jsonMac(S2, STAGE.key, STAGE.iv)).toBe(wrong);
    // The escaping is the only difference: for values without " and \ the recipe agrees with ours.
    expect(jsonMac(S3_REQUEST, STAGE.key, STAGE.iv)).toBe(checkMacValue(S3_REQUEST, STAGE.key, STAGE.iv));
    expect(checkMacValue(S2, STAGE.key, STAGE.iv)).not.toBe(wrong);
    expect(verifyCheckMacValue({ ...S2, CheckMacValue: wrong }, STAGE.key, STAGE.iv)).toBe(false);
    expect(verifyCheckMacValue({ ...S2, CheckMacValue: '8CA787FDA0E5E87C6BE93F6145C29BF99E6AB3120089D0628DF99E32D71254B8' }, STAGE.key, STAGE.iv)).toBe(true);
  });

  it('AIO messages are SHA-256 only: with algorithms [sha256] a valid MD5 MAC of the same fields is refused', () => {
    const md5 = checkMacValue(S4, STAGE.key, STAGE.iv, 'md5');
    expect(md5).toHaveLength(32);
    // Without the restriction the length picks MD5 and the MAC checks out (ECPay's other APIs, vector O4)...
    expect(verifyCheckMacValue({ ...S4, CheckMacValue: md5 }, STAGE.key, STAGE.iv)).toBe(true);
    // ...with it, a 32-character MAC is not even considered.
    expect(verifyCheckMacValue({ ...S4, CheckMacValue: md5 }, STAGE.key, STAGE.iv, { algorithms: ['sha256'] })).toBe(false);
    expect(verifyCheckMacValue({ ...S4, CheckMacValue: S4_MAC }, STAGE.key, STAGE.iv, { algorithms: ['sha256'] })).toBe(true);
    // And an MD5-only verifier refuses the SHA-256 MAC.
    expect(verifyCheckMacValue({ ...S4, CheckMacValue: S4_MAC }, STAGE.key, STAGE.iv, { algorithms: ['md5'] })).toBe(false);
  });

  it('accepts a lower-case MAC and rejects a MAC changed in one character', () => {
    expect(verifyCheckMacValue({ ...R1, CheckMacValue: R1.CheckMacValue!.toLowerCase() }, STAGE.key, STAGE.iv)).toBe(true);
    expect(verifyCheckMacValue({ ...R1, CheckMacValue: tamper(R1.CheckMacValue!) }, STAGE.key, STAGE.iv)).toBe(false);
    expect(verifyCheckMacValue({ ...S4, CheckMacValue: tamper(S4_MAC) }, STAGE.key, STAGE.iv)).toBe(false);
  });

  it('rejects a changed value, an added field, a missing MAC and MACs of the wrong length', () => {
    expect(verifyCheckMacValue({ ...R1, TradeAmt: '80801' }, STAGE.key, STAGE.iv)).toBe(false);
    expect(verifyCheckMacValue({ ...R1, Extra: '' }, STAGE.key, STAGE.iv)).toBe(false);
    const { CheckMacValue: _mac, ...noMac } = R1;
    expect(verifyCheckMacValue(noMac, STAGE.key, STAGE.iv)).toBe(false);
    expect(verifyCheckMacValue({ ...R1, CheckMacValue: R1.CheckMacValue!.slice(0, 63) }, STAGE.key, STAGE.iv)).toBe(false);
    expect(verifyCheckMacValue({ ...R1, CheckMacValue: '' }, STAGE.key, STAGE.iv)).toBe(false);
    expect(verifyCheckMacValue({ ...R1, CheckMacValue: 'Z'.repeat(64) }, STAGE.key, STAGE.iv)).toBe(false);
  });

  it('excludes CheckMacValue itself from the signed fields', () => {
    expect(checkMacValue({ ...O1, CheckMacValue: 'anything' }, STAGE.key, STAGE.iv)).toBe(
      '6C51C9E6888DE861FD62FB1DD17029FC742634498FD813DC43D4243B5685B840',
    );
  });
});
