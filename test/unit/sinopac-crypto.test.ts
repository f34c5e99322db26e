import { createCipheriv } from 'node:crypto';
import {
  decryptMessage,
  encryptMessage,
  hashId,
  ivFromNonce,
  sign,
  signingString,
  verifySign,
} from '../../src/gateways/sinopac/sinopac-crypto';

// All vectors from specs/sinopac-qpay.md §9.

const HASH_V_H1 = '17D8E6558DC60E702A6B57E1B9B7060D';
const HASH_V_H2 = '87282A2FA0E209EBE1B3713AB56A06C2';
const HASH_V_H3 = '4DA70F5E2D800D50B43ED3B537480C64';

const NONCE_V_I1 =
  'NjM2NjA0MzI4ODIyODguMzo3NzI0ZDg4ZmI5Nzc2YzQ1MTNhYzg2MTk3NDBlYTRhNGU0N2IxM2Q2M2JkMTIwOGU5YzZhMGFmNGY5MjA5YzVm';
const NONCE_V_I2 =
  'NjM2NjY5MDQ3OTQwMzIuMTphZmJjODBhOTM5NzQ1NjMyNDFhZTczMjVjYzg0Mjg5ZjQxYTk2MWI2ZjNkYTA0NDdmOTRhZjU3ZTIzOWJlNDgz';
const NONCE_V_I3 =
  'NjM3NjczODg3Mjc5MTYuNjo1ZDI5ZTQ3YjBlNzY2NTc4ODI3YzM0ZjdiMjlmYjg0MWQ3Y2NlYzI5NmM0NjI2MzA3NWRkYTNlNzQ1NzdhMWY4';
const NONCE_V_I4 =
  'NjM3Njc0NzY1MDExMjc6MjVmMDE2NDUyYThjNDE4ODY1MmI4Mzk0OGM3YWY1Mjg0M2Y4NDdlMjAyMTk0YWM3MGFhZGZmNDcyMGQ5ZjhjNw==';
const NONCE_V_I5 =
  'NjM3Njc0MDQxODY5OTYuNDowNDIxNTg3ODM5MDFhNTU1ZjYwYzMzMzg0NDEyMzUxNmQ5OTBlZWU1NDY2NjY2NDkyZjE5YTc3OTE2ZDExNjNh';
const NONCE_S1 =
  'NjM3Njc5NTg1MTE2NjUuNDozZGE0ODA2YmEyZGJmYjMyMDg4ODg3YjNkMmNiNmE2YjU5OWNhZjNhZmEzYWVlZGYwM2U5M2Y3Y2UyOWYyY2Yy';
const NONCE_R4 =
  'NjM3NjczMjQwNzM1NTAuOTo5ZWE1MmFhYzk0NDgwMzljY2RiNjhjOGU0MGU3ODc0NzFiMTIwNmNkMTViZWU4MzUwZDU3Zjg1M2VhNjIwODRj';

const R1_PLAIN =
  '{"ShopNo":"BA0026_001","OrderNo":"A201804270001","Amount":50000,"CurrencyID":"TWD","PayType":"A","ATMParam":{"ExpireDate":"20180502"},"CardParam":{},"PrdtName":"虛擬帳號訂單","ReturnURL":"http://10.11.22.113:8803/QPay.ApiClient/Store/Return","BackendURL":"http://10.11.22.113:8803/QPay.ApiClient/AutoPush/PushSuccess"}';
const R1_SIGN = 'A3EAEE3B361B7E7E9B0F6422B954ECA5D54CEC6EAB0880CB484AA6FDA4154331';
const R1_SIGNING_STRING =
  'Amount=50000&BackendURL=http://10.11.22.113:8803/QPay.ApiClient/AutoPush/PushSuccess&CurrencyID=TWD&OrderNo=A201804270001&PayType=A&PrdtName=虛擬帳號訂單&ReturnURL=http://10.11.22.113:8803/QPay.ApiClient/Store/Return&ShopNo=BA0026_001';
const R1_MESSAGE =
  '2C236A4E91DB2F7670E79BBCE3A626EB728916919012681FF92BE0B4BBF57F5519AF1A469A1D8710B202CB2C2F3C12A770788D825AD0F0A22AED518545A0D244AD0F9C37C7C693EFFABE78B606BCDAED6284902F7F522BBA85D9BE7EFEF46C6793FB6A5D6624C2642A74EB312034BEA931EE3A5F3C660F3ABAA9032949AE86DEFEB452545807561D282C7B7C8E9102CED1404B8B542BC09CE12FA38F335BE7F027AE74BDDBADDB1790B172EFBF1FD25524E2BB64A626EA44643D4BD490E348E926BB7A48D5FA939EEC5BE681009E7AC7FED1C8475B715891321406960675B5A216032CF8657A3CB2B2D0C7FF85027D70E1F2B5DD414373912E97FA6FB85E9AB89B118BC545583CC9AC503F8BAD73C185CB97B28313618021F9217A30278043EF728BB5C49D231C4A22279864F68194254BC624789F36CCDEE75861CFC667CD8E9E89F1DB04ABA0D26FEF24BFE0470488';

const R2_PLAIN =
  '{"ShopNo":"NA0001_001","OrderNo":"201807111119291750","Amount":50000,"CurrencyID":"TWD","PayType":"C","ATMParam":{},"CardParam":{"AutoBilling":"N","ExpMinutes":30},"PrdtName":"信用卡訂單","ReturnURL":"http://10.11.22.113:8803/QPay.ApiClient-Sandbox/Store/Return","BackendURL":"https://sandbox.sinopac.com/funBIZ.ApiClient/AutoPush/PushSuccess"}';
const R2_SIGNING_STRING =
  'Amount=50000&BackendURL=https://sandbox.sinopac.com/funBIZ.ApiClient/AutoPush/PushSuccess&CurrencyID=TWD&OrderNo=201807111119291750&PayType=C&PrdtName=信用卡訂單&ReturnURL=http://10.11.22.113:8803/QPay.ApiClient-Sandbox/Store/Return&ShopNo=NA0001_001';
const R2_SIGN = '7788EE61DD450944992641B3B2F8210B81A0AE97908BC19825F2A82C0F72EA43';
const R2_MESSAGE =
  '4FE341D3A8C30C9A50573F3008F7B1CA8DD96FB2A4346D83936E5C4FDB21E87BA9E3D36A6635C6F5EBBD5438F3CA8FE97DEBB2ADBC82F92BF3C840B3128D8F00116536E7C936D7D587F6220C52C1367DF2BE9CBB16C6A7C6242AA8B38CD2E576328CF727E50FFA49B4F9FBE5DF10986C5299F9FC26E23E956AFDFB92B731FDA84ABEF1C89E0CD0A8CA8F7C23DC2D06E12A6F916EC47CDD9B4D4F87AC0B687EE1088A19F2C35C0FD8B0C97745B926FBAA48FEEDEB826C2C22743DB46781FF220ECA409FC150908540271E60184729C08C73275C54125C3F814FF33CA79A0E1B3902D446925FCC8235809FCBAB7E372D8C29E424CEFF0AD1CBD41E843714EB365158F2FC0B2E6FB48176D5CFF6B68F4BED4D7484C1A4723ABD059DA64A6703B30B0199B170FDF059899552FA1818ABA5B0D0E21014513985A738D59851EDF0B1CFB36A7B7B727109BE7789D284C75E5D694DFC9B7060DCBFD8C7915C95C4E0F29B';

const R4_OBJECT = {
  ShopNo: 'NA0249_001',
  OrderNo: '2021091500002',
  Amount: 40400,
  CurrencyID: 'TWD',
  PrdtName: 'IPhone 13 Pro Max 256g',
  Memo: '',
  Param1: '',
  Param2: '',
  Param3: '',
  ReturnURL: 'https://0.0.0.0/store/Return',
  BackendURL: 'https://0.0.0.0/bakcend',
  PayType: 'C',
  ATMParam: { ExpireDate: '' },
  CardParam: { AutoBilling: 'Y', ExpBillingDays: 7, ExpMinutes: 10, PayTypeSub: 'ONE' },
};

const S1_MESSAGE =
  'A25E3DC32840C249955DD84177CC988E8D670F7218AF85F2479D26F80F26AF383FCC5399A56516D737556EDBDD0C4BBE4FD75856169014E453226408F044D6E63C5EC6FE4B386D5D0877899591CA0B7E5E7846F21396154AFC654E2FBD66D0E299D94FF2494582A78E3D2859F5C27FB631912229845DA38261171CA8B201EE5AE45B1EA299D76D8E001BC19DA698915E10A87F556653E0ABE266791989F954DAFF091DAE82A0FC331636BD602750ECBACFAD045C278DDA726CF1343E4E2193714BE19C35381ECF1ECD763E448063CF1FEA2382A27F2E74F6C43ED2A8DC3CB31A2AF28922E48C627774A07CAB18B3EACB4A284D2F6DFE7507640A851FE02D0B89F3D1C875CF969D75C8935FE01F048A621EF578D960AADD1EA86CD2481F0CD075D66CDEAFDE04DC086D3674FEFBED2B71913886319C5FF632AFDB8150523DA8FC1CBAB81B1C1C6A7C9419A6ED96990220F7103C7215FA6E0514EC1E48CE6F76EAB22E71D4D956172D3EE09AE392A64EBACFEF3F43458036E2A87DD02C730FE9F178F939E80B19A9279567B43967D585B9B8DFAF81265CB5522574EF8A67F415E978EE8F1F8717FF79A901F1E7293D9F925897E0D9FABA03187C1C9F61A1402AC24AF7E88F573790C1C3F1816C03649979';
const S1_SIGN = 'C8929F1A92550ED05E471B2C938EE19A0817F289197D9027696134BEDFD3961A';
const S1_PLAIN =
  '{"OrderNo":"TEST20210922174825","ShopNo":"NA0249_001","TSNo":"NA024900000210","Amount":50000,"Status":"S","Description":"S0000 – 處理成功","PayType":"A","ATMParam":{"AtmPayNo":"99922530174617","WebAtmURL":"https://sandbox.sinopac.com/QPay.WebPaySite/Bridge/PayWebATM?TD=NA024900000210&TK=4d9057aa-3df1-48cb-8165-e5f7a12cc775","OtpURL":"https://sandbox.sinopac.com/QPay.WebPaySite/Bridge/PayOTP?TD=NA024900000210&TK=4d9057aa-3df1-48cb-8165-e5f7a12cc775"}}';
const S1_SIGNING_STRING =
  'Amount=50000&Description=S0000 – 處理成功&OrderNo=TEST20210922174825&PayType=A&ShopNo=NA0249_001&Status=S&TSNo=NA024900000210';

interface SelfComputed {
  id: string;
  nonce: string;
  iv: string;
  json: string;
  signingString: string;
  sign: string;
  message: string;
}

const SELF_COMPUTED: SelfComputed[] = [
  {
    id: 'SC-1 OrderPayQuery request',
    nonce: 'NjM4MDAwMDAwMDAwMDAuMDpzZWxmY29tcHV0ZWR0ZXN0dmVjdG9y',
    iv: 'ADF3DD399F209078',
    json: '{"ShopNo":"NA0249_001","PayToken":"da1547c3d0d1649af5049125b0880c0e227f31e107cbf4f0995bed28d0f066c1"}',
    signingString: 'PayToken=da1547c3d0d1649af5049125b0880c0e227f31e107cbf4f0995bed28d0f066c1&ShopNo=NA0249_001',
    sign: 'C2140BF815B7B26FAAFB4210FEDCC27DA13262FB156C7F5A09FDC985BA6420A3',
    message:
      'EC58DF91F6235B20261E719D5451F7CCA463DB7C51590132FFEEF88D971FBCEFF5DFAA4617E98FCFB78ACE87F97AF469837F1E1604EDF08489E57ADF626BA39DC026A35C43532FF24E9960F2D7E1F978F64AB6DE1E370468400A8ED4100192642D4F6C92397797958F6A4D80F91B8DD0',
  },
  {
    id: 'SC-2 OrderCreate card',
    nonce: 'NjM4MDAwMDAwMDAwMDEuMTpzZWxmY29tcHV0ZWR0ZXN0dmVjdG9y',
    iv: '0C61282FC3B2C646',
    json: '{"ShopNo":"NA0249_001","OrderNo":"LB20240101000001","Amount":129900,"CurrencyID":"TWD","PrdtName":"LINE小舖訂單","Param1":"U1234567890abcdef","ReturnURL":"https://shop.example.com/sinopac/return","BackendURL":"https://shop.example.com/sinopac/notify","PayType":"C","CardParam":{"AutoBilling":"Y","ExpMinutes":10}}',
    signingString:
      'Amount=129900&BackendURL=https://shop.example.com/sinopac/notify&CurrencyID=TWD&OrderNo=LB20240101000001&Param1=U1234567890abcdef&PayType=C&PrdtName=LINE小舖訂單&ReturnURL=https://shop.example.com/sinopac/return&ShopNo=NA0249_001',
    sign: 'AB47F457A0BDD1D3482EDCF5EB5502E14339B0EF18FA8ACD4D2D13FAFB7A7082',
    message:
      '6B90B3A7A86AD555BE08152871B281BCC861FFBE0F2B8A6CEB6D6F9663E2C6EBCB84C9DCE80491FD124DA6180D8E62FB3F0CD2CA04242E37CAC4545E9C90EFFA849B3A879A72C7D49B126D7646A7EC2F93A530371CB15B6B22C2DAC96856826C57EFD3A0560C504E54D3E3A0546F321E4BA32D030BB3C48685C44A6A34A9ED1499C1395945627C86BBA51AC76C4A087A01A47806EDF29D5C87527BCA936AC90427597BD4BC3C5BF925A9F2ADBEAB7434020741778E111A1677AE8CEAA7A2FA8D2D95F18DE988B4ADC65C8ED84215DC8325AB55D4B413D19BCB69AC73C1EF82B7301B417964732F39D6D742E0313853A772A6601B4B44CCF4C0EF974D2C8950B958316A5F29B12A7629F5EEBB4F63CDED892FFE0295A7CDCA8506FF5D2839CB484394BEF4BC2CAEB864A842528D07B82BDF9C3669A25FBA54166E4F3FD2BA8CE3',
  },
  {
    id: 'SC-3 OrderCreate ATM',
    nonce: 'NjM4MDAwMDAwMDAwMDIuMjpzZWxmY29tcHV0ZWR0ZXN0dmVjdG9y',
    iv: '355AE44E368302C7',
    json: '{"ShopNo":"NA0249_001","OrderNo":"LB20240101000002","Amount":50000,"CurrencyID":"TWD","PrdtName":"虛擬帳號訂單","ReturnURL":"https://shop.example.com/sinopac/return","BackendURL":"https://shop.example.com/sinopac/notify","PayType":"A","ATMParam":{"ExpireDate":"20240108"}}',
    signingString:
      'Amount=50000&BackendURL=https://shop.example.com/sinopac/notify&CurrencyID=TWD&OrderNo=LB20240101000002&PayType=A&PrdtName=虛擬帳號訂單&ReturnURL=https://shop.example.com/sinopac/return&ShopNo=NA0249_001',
    sign: '691C23BC1C4F13F63223A15D5EB1CB56583138594A3A156C24AB7AD3B23B0D99',
    message:
      '9C8804E485FFC3E1E60D3493E3880898886FF4B91A0504C1544819BD54C34D44EE36D8A4A4B0241285A0F06D857DE20FD4166E3BD286E0F12225CCCC64A2592AA860A8C5A2DDA6AB712E734F68A54A9FD1743F78D36FC95443544078454ECDFD1D1D72602F5BF58B8B2E52CFF848244BCECD0BE5E34CAFE908C153625A8B3018A0D5076E79C276E05BF07E0CF3C5DF3012FCC7D47473CC7E07D03E3468ED14A724F966984CADF00BDEF897F1F4E8DE66F7A253C60145D4DC9BAD9BCA150161921DE9A5DBB8D9F7EE35D31194426F6863972B54D219E6A1CE99C5B56BDE224F318D2653D90CD505605740315208FF8376B5271DF125FF6D2CA50A0DC715760BED96C237A15E8141AF4EBB737E6AD42F91E986C873AF2C6951294F47C3C974B8C9',
  },
  {
    id: 'SC-4 simulated OrderPayQuery response',
    nonce: 'NjM4MDAwMDAwMDAwMDMuMzpzZWxmY29tcHV0ZWR0ZXN0dmVjdG9y',
    iv: '21B9A031FD2877AC',
    json: '{"ShopNo":"NA0249_001","PayToken":"8ab3058e04bd1a58b54232987530c4faa6e97be7b1de009c1d230f125c7802c9","Date":"202110022135","Status":"S","Description":"S0000 – 處理成功","TSResultContent":{"APType":"PayOut","TSNo":"NA024900000479","OrderNo":"A202110235940","ShopNo":"NA0249_001","PayType":"A","Amount":"9440300","Status":"S","Description":"","PayDate":"202110022130"}}',
    signingString:
      'Date=202110022135&Description=S0000 – 處理成功&PayToken=8ab3058e04bd1a58b54232987530c4faa6e97be7b1de009c1d230f125c7802c9&ShopNo=NA0249_001&Status=S',
    sign: 'BD80B924EF393EEB38D8EDAAFAEE1809CE8B6D3D06E5C22395CA4BB6084DCB40',
    message:
      '4396DD11BCBC24F4A9004939ADC7D514B056977BCC8E8E88B7D359FDCC2504BFD876B42C8032F8662D3DBCCA03E8BA72253C2C607386F056B4090220C809BD13BDD03BBF7B93BDD468E41C4F193396214B4E6BE6D537C685781EBCFCBD661BED890255087C2C124BB5438446B80D06D847F968D3E52BDD1AA049EFB6E56D889CA972BFA708CBB30F6F647B74C71C4D8A94B0C94F2754CB98EBB1FEFE862B0C03A8BA2A5FB75F758EC0C5A26E38C475CF2037CC01607BE40CF1AAD1FBBBEBEA84C4A3B563E6AFE6FD0ED97E25BF871A0DF446318DF9DCBE93FF9CCEF0284BB9A591D947BD85B123E82352F0B9D2AC0B78909DB222EF53C0256B57D800191CD93CB609EE969864011528E2E9B8A63406A85EF3FC8A308E61E7BBE36D7EA39EEADAAD37811FDBCB8F2F4D2BCB5A29C034F575166ABE3BD9F2FECFA6799E75C1FB481B58CC4E0536FF3491BA4FFFC262390E4DA25D7060FAD9CBA020AF691A17D0B4FFA4B73DC11CA0A4269F979A9B79BAC5F7C29EC4ED82F21BCB49BFA1AE54E768',
  },
];

describe('HashID (spec §3.1, §9.1)', () => {
  it('V-H1: the bank manual example', () => {
    expect(hashId('4D9709D699CA40EE', '5A4FEF83140C4E9E', 'BC74301945134CB4', '961F67F8FCA44AB9')).toBe(HASH_V_H1);
  });

  it('V-H2: the iThome contest shop NA0249_001', () => {
    expect(hashId('86D50DEF3EB7400E', '01FD27C09E5549E5', '9E004965F4244953', '7FB3385F414E4F91')).toBe(HASH_V_H2);
  });

  it('V-H3: the bank C# sample config', () => {
    expect(hashId('65960834240E44B7', '2831076A098E49E7', 'CB1AFFBF915A492B', '7F242C0AA612454F')).toBe(HASH_V_H3);
  });

  it('normalises like the bank sample: lower case, dashes and GUID tails are accepted', () => {
    expect(
      hashId('4d9709d6-99ca-40ee-8888-123456789abc', '5a4fef83-140c-4e9e', 'BC743019-4513-4CB4', '961F67F8FCA44AB9FFFF'),
    ).toBe(HASH_V_H1);
  });

  it('keeps leading zeros of each half (32 characters even when a XOR byte is 0)', () => {
    const h = hashId('00000000000000FF', '0000000000000001', '0123456789ABCDEF', '0123456789ABCDEF');
    expect(h).toBe('00000000000000FE0000000000000000');
    expect(h).toHaveLength(32);
  });

  it('refuses a value that is not 16 hex characters, without echoing it', () => {
    expect(() => hashId('SECRETVALUE', '5A4FEF83140C4E9E', 'BC74301945134CB4', '961F67F8FCA44AB9')).toThrow(/A1/);
    try {
      hashId('SECRETVALUE', '5A4FEF83140C4E9E', 'BC74301945134CB4', '961F67F8FCA44AB9');
    } catch (err) {
      expect((err as Error).message).not.toContain('SECRETVALUE');
    }
  });
});

describe('IV from nonce (spec §3.2, §9.2)', () => {
  it.each([
    ['V-I1', NONCE_V_I1, 'CB6FA68E42B655AB'],
    ['V-I2', NONCE_V_I2, '346BBE8E3F34FFEA'],
    ['V-I3', NONCE_V_I3, '2D3E2EA879B80C63'],
    ['V-I4 (ends in ==)', NONCE_V_I4, '15FE64E9D28D8934'],
    ['V-I5', NONCE_V_I5, '3C7B67201DC59932'],
    ['self-computed (nonce of S-1)', NONCE_S1, '792D14364DF9764D'],
  ])('%s', (_id, nonce, iv) => {
    expect(ivFromNonce(nonce)).toBe(iv);
  });
});

describe('R-1: bank manual ATM OrderCreate (HashID V-H1, nonce V-I1)', () => {
  const obj = JSON.parse(R1_PLAIN) as Record<string, unknown>;

  it('signing string', () => {
    expect(signingString(obj)).toBe(R1_SIGNING_STRING);
  });

  it('Sign', () => {
    expect(sign(obj, NONCE_V_I1, HASH_V_H1)).toBe(R1_SIGN);
  });

  it('Message: exact 324-byte plaintext → the published 672-hex ciphertext', () => {
    expect(Buffer.byteLength(R1_PLAIN, 'utf8')).toBe(324);
    const message = encryptMessage(R1_PLAIN, HASH_V_H1, NONCE_V_I1);
    expect(message).toHaveLength(672);
    expect(message).toBe(R1_MESSAGE);
  });

  it('decrypts back, in either hex case', () => {
    expect(decryptMessage(R1_MESSAGE, HASH_V_H1, NONCE_V_I1)).toBe(R1_PLAIN);
    expect(decryptMessage(R1_MESSAGE.toLowerCase(), HASH_V_H1, NONCE_V_I1)).toBe(R1_PLAIN);
  });

  it('the manual\'s extra "ConvStoreParam": {} does not change the Sign', () => {
    expect(sign({ ...obj, ConvStoreParam: {} }, NONCE_V_I1, HASH_V_H1)).toBe(R1_SIGN);
  });
});

describe('R-2: card OrderCreate (HashID V-H3, nonce V-I2)', () => {
  const obj = JSON.parse(R2_PLAIN) as Record<string, unknown>;

  it('signing string', () => {
    expect(signingString(obj)).toBe(R2_SIGNING_STRING);
  });

  it('Sign', () => {
    expect(sign(obj, NONCE_V_I2, HASH_V_H3)).toBe(R2_SIGN);
  });

  it('Message', () => {
    expect(encryptMessage(R2_PLAIN, HASH_V_H3, NONCE_V_I2)).toBe(R2_MESSAGE);
  });

  it('decrypts back', () => {
    expect(decryptMessage(R2_MESSAGE, HASH_V_H3, NONCE_V_I2)).toBe(R2_PLAIN);
  });
});

describe('R-3: Sign of the manual card example (HashID V-H3, nonce V-I2)', () => {
  it('matches the published prefix and the full self-computed value', () => {
    const obj = {
      ShopNo: 'BA0026_001',
      OrderNo: 'C201804300001',
      Amount: 50000,
      CurrencyID: 'TWD',
      PayType: 'C',
      CardParam: { AutoBilling: 'Y' },
      PrdtName: '信用卡訂單',
      ReturnURL: 'http://10.11.22.113:8803/QPay.ApiClient/Store/Return',
      BackendURL: 'http://10.11.22.113:8803/QPay.ApiClient/AutoPush/PushSuccess',
    };
    const s = sign(obj, NONCE_V_I2, HASH_V_H3);
    expect(s.startsWith('379E0EB5741139418868C95EE22BF298D656D096EF46EC76B6')).toBe(true);
    expect(s).toBe('379E0EB5741139418868C95EE22BF298D656D096EF46EC76B65AD3A0A967314E');
  });
});

describe('R-4: empty fields and nested objects are not signed (HashID V-H1)', () => {
  const published = '3c883d53f7732ec7c3f8c9d0232691545855b60507b199094a4cde71c911f522';

  it('signing string drops Memo/Param1..3 and ATMParam/CardParam', () => {
    expect(signingString(R4_OBJECT)).toBe(
      'Amount=40400&BackendURL=https://0.0.0.0/bakcend&CurrencyID=TWD&OrderNo=2021091500002&PayType=C&PrdtName=IPhone 13 Pro Max 256g&ReturnURL=https://0.0.0.0/store/Return&ShopNo=NA0249_001',
    );
  });

  it('Sign equals the published (lower-case) value case-insensitively', () => {
    const s = sign(R4_OBJECT, NONCE_R4, HASH_V_H1);
    expect(s).toBe(published.toUpperCase());
    expect(verifySign(R4_OBJECT, NONCE_R4, HASH_V_H1, published)).toBe(true);
  });

  it('whitespace-only strings are dropped too', () => {
    expect(signingString({ B: ' ', a: 'x', C: '\t' })).toBe('a=x');
  });
});

describe('R-5: pretty-printed JSON (HashID V-H2, nonce V-I4)', () => {
  it('Sign', () => {
    expect(sign(R4_OBJECT, NONCE_V_I4, HASH_V_H2)).toBe('FBF41F9BFA5607F5141D508DA6B914DCAB97CE7CDE22EE636C9FDD81A9AC3277');
  });

  it('Message of JSON.stringify(obj, null, 4) has the published ends and round-trips', () => {
    const plain = JSON.stringify(R4_OBJECT, null, 4);
    const message = encryptMessage(plain, HASH_V_H2, NONCE_V_I4);
    expect(message.startsWith('FAE9E297DB4D0B16D3E5A56561B28DDC41CD135B23D5309F971091033425405B')).toBe(true);
    expect(message.endsWith('C2E6EBCA124C6D8F546DF954C333')).toBe(true);
    expect(JSON.parse(decryptMessage(message, HASH_V_H2, NONCE_V_I4))).toEqual(R4_OBJECT);
  });
});

describe('S-1: real sandbox OrderCreate response (HashID V-H2)', () => {
  it('decrypts with the IV of the response nonce to the exact published text', () => {
    expect(ivFromNonce(NONCE_S1)).toBe('792D14364DF9764D');
    expect(decryptMessage(S1_MESSAGE, HASH_V_H2, NONCE_S1)).toBe(S1_PLAIN);
  });

  it('its Sign verifies over the decrypted object (Chinese text and U+2013 included)', () => {
    const obj = JSON.parse(decryptMessage(S1_MESSAGE, HASH_V_H2, NONCE_S1)) as Record<string, unknown>;
    expect(signingString(obj)).toBe(S1_SIGNING_STRING);
    expect(sign(obj, NONCE_S1, HASH_V_H2)).toBe(S1_SIGN);
    expect(verifySign(obj, NONCE_S1, HASH_V_H2, S1_SIGN)).toBe(true);
    expect(verifySign(obj, NONCE_S1, HASH_V_H2, S1_SIGN.toLowerCase())).toBe(true);
  });

  it('does not verify with the request-side nonce or another HashID', () => {
    const obj = JSON.parse(S1_PLAIN) as Record<string, unknown>;
    expect(verifySign(obj, NONCE_V_I1, HASH_V_H2, S1_SIGN)).toBe(false);
    expect(verifySign(obj, NONCE_S1, HASH_V_H1, S1_SIGN)).toBe(false);
  });
});

describe('SC-1..SC-4: self-computed vectors (HashID V-H2)', () => {
  describe.each(SELF_COMPUTED.map((v) => [v.id, v] as const))('%s', (_id, v) => {
    const obj = JSON.parse(v.json) as Record<string, unknown>;

    it('IV', () => {
      expect(ivFromNonce(v.nonce)).toBe(v.iv);
    });

    it('signing string and Sign', () => {
      expect(signingString(obj)).toBe(v.signingString);
      expect(sign(obj, v.nonce, HASH_V_H2)).toBe(v.sign);
    });

    it('Message, and decryption back to the same JSON', () => {
      expect(encryptMessage(v.json, HASH_V_H2, v.nonce)).toBe(v.message);
      expect(decryptMessage(v.message, HASH_V_H2, v.nonce)).toBe(v.json);
    });
  });
});

describe('negative checks', () => {
  it('AES-128 with the hex-decoded HashID does not reproduce R-1 or R-2', () => {
    const aes128 = (plain: string, hid: string, nonce: string) => {
      const c = createCipheriv('aes-128-cbc', Buffer.from(hid, 'hex'), Buffer.from(ivFromNonce(nonce), 'ascii'));
      return Buffer.concat([c.update(plain, 'utf8'), c.final()]).toString('hex').toUpperCase();
    };
    const m1 = aes128(R1_PLAIN, HASH_V_H1, NONCE_V_I1);
    const m2 = aes128(R2_PLAIN, HASH_V_H3, NONCE_V_I2);
    expect(m1).toMatch(/^[0-9A-F]+$/);
    expect(m1).not.toBe(R1_MESSAGE);
    expect(m2).not.toBe(R2_MESSAGE);
  });

  it('a lower-case HashID does not reproduce R-1 or R-2 (Message or Sign)', () => {
    const l1 = HASH_V_H1.toLowerCase();
    const l3 = HASH_V_H3.toLowerCase();
    expect(encryptMessage(R1_PLAIN, l1, NONCE_V_I1)).not.toBe(R1_MESSAGE);
    expect(encryptMessage(R2_PLAIN, l3, NONCE_V_I2)).not.toBe(R2_MESSAGE);
    expect(sign(JSON.parse(R1_PLAIN), NONCE_V_I1, l1)).not.toBe(R1_SIGN);
    expect(sign(JSON.parse(R2_PLAIN), NONCE_V_I2, l3)).not.toBe(R2_SIGN);
  });

  it('a one-character change in any signed field of S-1 fails verifySign', () => {
    const obj = JSON.parse(S1_PLAIN) as Record<string, unknown>;
    const signed = ['OrderNo', 'ShopNo', 'TSNo', 'Amount', 'Status', 'Description', 'PayType'];
    for (const key of signed) {
      const v = String(obj[key]);
      const changed = v.slice(0, -1) + (v.endsWith('0') ? '1' : '0');
      const tampered = { ...obj, [key]: typeof obj[key] === 'number' ? Number(changed) : changed };
      expect(verifySign(tampered, NONCE_S1, HASH_V_H2, S1_SIGN)).toBe(false);
    }
    // A nested (unsigned) field may change without affecting the Sign: that is the protocol.
    const nested = { ...obj, ATMParam: { AtmPayNo: '00000000000000' } };
    expect(verifySign(nested, NONCE_S1, HASH_V_H2, S1_SIGN)).toBe(true);
  });

  it('a one-character change in the Sign itself, or a truncated Sign, fails', () => {
    const obj = JSON.parse(S1_PLAIN) as Record<string, unknown>;
    expect(verifySign(obj, NONCE_S1, HASH_V_H2, `${S1_SIGN.slice(0, -1)}B`)).toBe(false);
    expect(verifySign(obj, NONCE_S1, HASH_V_H2, S1_SIGN.slice(0, 63))).toBe(false);
    expect(verifySign(obj, NONCE_S1, HASH_V_H2, '')).toBe(false);
  });

  it('decryptMessage rejects malformed hex and a wrong key', () => {
    expect(() => decryptMessage('XYZ', HASH_V_H1, NONCE_V_I1)).toThrow(/hex/);
    expect(() => decryptMessage(R1_MESSAGE.slice(0, 30), HASH_V_H1, NONCE_V_I1)).toThrow(/hex/);
    // With a wrong key the padding check fails (or, rarely, garbage comes out): never the plaintext.
    let out: string | undefined;
    try {
      out = decryptMessage(R1_MESSAGE, HASH_V_H2, NONCE_V_I1);
    } catch (err) {
      expect((err as Error).message).not.toContain(HASH_V_H2);
    }
    expect(out).not.toBe(R1_PLAIN);
  });

  it('signing string: case-insensitive key order, values verbatim, numeric 0 kept', () => {
    expect(signingString({ b: 'x y', A: 'a/b:c', c: 0, D: null, e: undefined, f: [1], g: { h: 1 } })).toBe(
      'A=a/b:c&b=x y&c=0',
    );
  });
});
