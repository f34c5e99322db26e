/**
 * Every word a shopper or shop owner reads, in Traditional Chinese (zh-TW), in one place.
 * Functions take already-formatted values; money is integer TWD.
 */

export const twd = (n: number): string => `NT$${n.toLocaleString('en-US')}`;

const pad2 = (n: number) => String(n).padStart(2, '0');

/** Formats a moment as Taipei local time, e.g. 2026/11/22 14:05. */
export function taipeiTime(d: Date): string {
  const t = new Date(d.getTime() + 8 * 3600_000);
  return `${t.getUTCFullYear()}/${pad2(t.getUTCMonth() + 1)}/${pad2(t.getUTCDate())} ${pad2(t.getUTCHours())}:${pad2(t.getUTCMinutes())}`;
}

export const STATUS_LABEL: Record<string, string> = {
  pending_payment: '待付款',
  paid: '已付款',
  shipped: '已出貨',
  completed: '已完成',
  expired: '已逾期',
  cancelled: '已取消',
  paid_no_stock: '已收款・缺貨待退款',
  refunded: '已退款',
};

export const METHOD_LABEL: Record<string, string> = {
  'sinopac-atm': '永豐 ATM 轉帳',
  'sinopac-card': '永豐 信用卡',
  'ecpay-credit': '綠界 信用卡',
  'ecpay-atm': '綠界 ATM 轉帳',
  'ecpay-cvs': '綠界 超商代碼',
};

export const T = {
  welcome: (name?: string | null) =>
    `${name ? `${name}，` : ''}歡迎光臨！🛍️\n在這裡就能逛商品、放進購物車、結帳付款。\n\n輸入「商品」看看今天有什麼，或輸入「說明」了解怎麼買。`,
  help: [
    '🛒 購物說明',
    '・商品 (menu)：看商品，點「加入購物車」',
    '・購物車 (cart)：查看購物車、增減數量、結帳',
    '・cart <商品編號或SKU> <數量|+n|-n>：直接設定數量，0 代表移除',
    '・結帳 (checkout)：建立訂單並保留庫存，再選付款方式',
    '・訂單 (orders)：最近的訂單；訂單 <訂單編號>：訂單明細',
    '・取消 <訂單編號> (cancel)：取消尚未付款的訂單',
  ].join('\n'),
  ownerHelp: [
    '🔧 店長指令',
    '・今日訂單：今天的訂單',
    '・出貨 <訂單編號> [物流單號]：標記出貨並通知顧客',
    '・完成 <訂單編號>：標記訂單完成',
    '・庫存 <SKU> <數量>：設定現有庫存',
    '・庫存：低庫存清單',
    '・退款 <訂單編號> [金額]：信用卡退款（綠界）',
  ].join('\n'),
  unknown: '抱歉，我看不懂這個指令 🙏\n可以輸入：商品、購物車、結帳、訂單、說明',
  groupOnly: '謝謝邀請！購物請私訊我（一對一聊天），才能保護你的訂單資料喔 🙏',
  nonText: '目前只看得懂文字指令喔！輸入「說明」看看怎麼購物。',
  internalError: (code: string) => `系統忙碌中，請稍後再試一次 🙏（代碼：${code}）`,

  catalogEmpty: '目前沒有上架的商品，請稍後再來看看！',
  catalogAlt: (page: number, pages: number) => `商品目錄（第 ${page}/${pages} 頁）`,
  addToCart: '加入購物車',
  soldOut: '已售完',
  stockLeft: (n: number) => `剩 ${n} 件`,
  moreProducts: '更多商品',
  moreProductsHint: (from: number, to: number, total: number) => `還有商品 ${from}–${to}（共 ${total} 件）`,
  nextPage: '下一頁',

  productUnknown: (ref: string) => `找不到商品「${ref}」。輸入「商品」查看目前販售的品項。`,
  productInactive: (name: string) => `「${name}」目前已下架，看看其他商品吧！`,
  notEnoughStock: (name: string, available: number) =>
    available > 0 ? `「${name}」庫存不足，目前只剩 ${available} 件。` : `「${name}」已售完 😢`,
  qtyInvalid: '數量請輸入 0 到 99 之間的整數，例如：cart A001 2、cart A001 +1、cart A001 -1',
  cartUsage: '用法：cart <商品編號或SKU> <數量|+n|-n>\n例如：cart 3 2、cart TEA-001 +1、cart TEA-001 0（移除）',
  cartLineTooMany: '單一商品最多 99 件喔！',
  cartTooManyLines: '購物車最多放 20 種商品喔！',
  cartUpdated: (name: string, qty: number) => (qty > 0 ? `已更新：${name} × ${qty}` : `已從購物車移除：${name}`),
  cartEmpty: '購物車是空的。輸入「商品」開始選購吧！',
  cartAlt: (count: number, subtotal: number) => `購物車：${count} 件，小計 ${twd(subtotal)}`,
  cartTitle: '🛒 購物車',
  subtotal: '小計',
  checkout: '結帳',
  continueShopping: '繼續逛逛',

  checkoutStockChanged: (lines: string[]) => `結帳失敗，庫存有變動：\n${lines.join('\n')}\n請調整購物車後再結帳。`,
  checkoutBusy: '目前結帳人數眾多，請再按一次結帳 🙏',
  checkoutCartChanged: '這個結帳按鈕已經過期：購物車內容有變更，請確認下面最新的購物車再結帳。',
  orderCreatedAlt: (orderNo: string, total: number) => `訂單 ${orderNo} 已成立，金額 ${twd(total)}，請選擇付款方式`,
  orderCreatedTitle: '訂單已成立',
  holdUntil: (d: Date) => `保留至 ${taipeiTime(d)}`,
  choosePayment: '請選擇付款方式：',
  noPaymentMethods: '目前尚未開放線上付款，店家會再與你聯絡 🙏',
  total: '總計',

  ordersEmpty: '你還沒有訂單喔！',
  ordersAlt: (n: number) => `最近 ${n} 筆訂單`,
  ordersTitle: '📦 最近的訂單',
  orderUnknown: (orderNo: string) => `找不到訂單「${orderNo}」。輸入「訂單」查看你的訂單。`,
  orderDetailAlt: (orderNo: string, status: string) => `訂單 ${orderNo}：${status}`,
  viewOrder: '查看',
  trackingNo: (t: string) => `物流單號：${t}`,

  cancelDone: (orderNo: string) => `訂單 ${orderNo} 已取消，保留的商品已釋出。`,
  cancelNotAllowed: (orderNo: string, status: string) => `訂單 ${orderNo} 目前是「${status}」，無法取消。`,
  cancelOrder: '取消訂單',
  expiredNotice: (orderNo: string) => `訂單 ${orderNo} 超過付款期限，已自動取消，保留的商品已釋出。需要的話可以重新下單喔！`,

  stalePayTap: (orderNo: string, status: string) => `訂單 ${orderNo} 目前是「${status}」，無法再付款。`,
  methodUnavailable: '這個付款方式目前沒有開放，請選擇其他方式 🙏',
  paymentCreateFailed: '付款建立失敗，銀行暫時沒有回應。請稍後再試一次，或選擇其他付款方式 🙏',
  atmAlt: (amount: number, deadline: Date) => `ATM 轉帳資訊：${twd(amount)}，請於 ${taipeiTime(deadline)} 前完成`,
  atmTitle: 'ATM 轉帳資訊',
  bankCode: '銀行代碼',
  virtualAccount: '轉帳帳號',
  amount: '金額',
  deadline: '繳費期限',
  cvsAlt: (amount: number, deadline: Date) => `超商代碼繳費：${twd(amount)}，請於 ${taipeiTime(deadline)} 前完成`,
  cvsTitle: '超商代碼繳費',
  cvsCode: '繳費代碼',
  cvsHint: '請到 7-11、全家、萊爾富、OK 的多媒體機台輸入代碼列印繳費單。',
  payLinkAlt: (method: string, amount: number) => `${method}：${twd(amount)}，請點按鈕付款`,
  payLinkTitle: '前往付款',
  payNow: '前往付款',
  switchMethodHint: '想換付款方式？直接點其他付款方式即可。同一筆訂單請只付款一次喔！',

  receiptAlt: (orderNo: string, amount: number) => `已收到付款：訂單 ${orderNo}，${twd(amount)}`,
  receiptTitle: '付款成功 🎉',
  receiptThanks: '謝謝你的購買！我們會盡快出貨。',
  lateRereserved: '付款已在期限後收到，商品仍有庫存，訂單照常處理。',
  paidNoStockShopper: (orderNo: string) => `我們收到了訂單 ${orderNo} 的付款，但付款時訂單已逾期、商品也已售完 🙏\n店家會盡快為你辦理退款。`,
  paymentFailedShopper: (orderNo: string) => `訂單 ${orderNo} 的付款沒有成功。可以再試一次或選擇其他付款方式。`,
  codeIssueFailedShopper: (orderNo: string, method: string) =>
    `訂單 ${orderNo} 的「${method}」沒有取號成功，無法用這個方式繳費。請在下方重新選擇付款方式 🙏`,
  shippedShopper: (orderNo: string, tracking?: string | null) =>
    `你的訂單 ${orderNo} 已出貨 🚚${tracking ? `\n物流單號：${tracking}` : ''}`,
  completedShopper: (orderNo: string) => `訂單 ${orderNo} 已完成，謝謝你的支持！`,
  refundShopper: (orderNo: string, amount: number) => `訂單 ${orderNo} 已退款 ${twd(amount)}，實際入帳時間依發卡銀行為準。`,

  ownerOnly: '這個指令只有店長可以使用。',
  ownerPaidAlt: (orderNo: string, amount: number) => `💰 新付款：訂單 ${orderNo}，${twd(amount)}`,
  ownerPaidTitle: '💰 收到新付款',
  ownerPaidNoStock: (orderNo: string, amount: number) =>
    `⚠️ 訂單 ${orderNo} 逾期後收到付款 ${twd(amount)}，但庫存已不足，請為顧客退款。`,
  ownerMismatch: (provider: string, tradeNo: string, what: string) =>
    `⚠️ 付款通知異常（${provider}，交易編號 ${tradeNo}）：${what}。系統未變更任何訂單，請到銀行後台確認。`,
  ownerBadExpireDate: (orderNo: string, tradeNo: string, got: string, hold: Date) =>
    `⚠️ 訂單 ${orderNo} 的綠界取號通知（交易編號 ${tradeNo}）繳費期限無法辨識：「${got}」。已把繳費資訊傳給顧客，商品保留到 ${taipeiTime(hold)} 不變；請到綠界後台確認實際期限。`,
  ownerBankPaused: (until: Date) =>
    `⚠️ 綠界暫時拒絕我們的呼叫（HTTP 403：呼叫太頻繁，或主機 IP 不在允許清單）。${taipeiTime(until)} 前不再呼叫綠界，付款確認與退款會延後處理。若一再發生，請向綠界確認主機 IP 設定。`,
  ownerSimulated: (tradeNo: string) => `⚠️ 收到模擬付款通知（交易編號 ${tradeNo}），正式環境不視為收款。`,
  ownerTodayEmpty: '今天還沒有訂單。',
  ownerTodayTitle: (n: number, paid: number) => `📋 今日訂單 ${n} 筆，已收款 ${twd(paid)}`,
  ownerShipped: (orderNo: string) => `已標記出貨：${orderNo}，並已通知顧客。`,
  ownerCompleted: (orderNo: string) => `已標記完成：${orderNo}。`,
  ownerStatusConflict: (orderNo: string, status: string) => `訂單 ${orderNo} 目前是「${status}」，無法執行這個動作。`,
  ownerStockSet: (sku: string, qty: number, available: number) => `${sku} 庫存已設為 ${qty}（可售 ${available}）。`,
  ownerStockBelowReserved: (sku: string, reserved: number) => `${sku} 目前有 ${reserved} 件被訂單保留，庫存不能設得比這更少。`,
  stockReasonChat: '聊天室指令「庫存」',
  ownerStockUsage: '用法：庫存 <SKU> <數量>，例如：庫存 TEA-001 20',
  ownerLowStockEmpty: '所有商品庫存充足 👍',
  ownerLowStockTitle: '📉 低庫存商品（可售 ≤ 5）',
  ownerShipUsage: '用法：出貨 <訂單編號> [物流單號]',
  ownerRefundUsage: '用法：退款 <訂單編號> [金額]',
  ownerRefundDone: (orderNo: string, amount: number, total: number) => `已退款 ${twd(amount)}（訂單 ${orderNo} 累計退款 ${twd(total)}）。`,
  ownerRefundTooMuch: (orderNo: string, refundable: number) => `退款金額超過可退金額：訂單 ${orderNo} 目前最多可退 ${twd(refundable)}。`,
  ownerRefundNotCard: '只有綠界信用卡付款可以線上退款，其他付款方式請到銀行後台處理。',
  ownerRefundFailed: '銀行拒絕了這筆退款，請到綠界後台確認。',
  ownerRefundRequested: (orderNo: string, method: string, amount: number) => `退款處理中：訂單 ${orderNo}，${method}，${twd(amount)}。完成後會再通知你。`,
  ownerRefundUnreachable: (orderNo: string, amount: number) =>
    `⚠️ 訂單 ${orderNo} 的 ${twd(amount)} 退款沒有送出：多次連不上綠界。這筆金額已可重新申請退款。`,
  ownerRefundUnknown: (orderNo: string, amount: number) =>
    `⚠️ 退款結果不明：訂單 ${orderNo} 的 ${twd(amount)} 退款已送出，但銀行沒有回應。請到綠界後台確認是否已退款；系統不會自動重送。`,
  ownerRefundNotPaid: (orderNo: string, status: string) => `訂單 ${orderNo} 目前是「${status}」，沒有可退款的付款。`,
  ownerDailySummary: (date: string, orders: number, paid: number, amount: number) =>
    `📊 ${date} 營業摘要\n訂單 ${orders} 筆，已付款 ${paid} 筆，收款 ${twd(amount)}`,
} as const;

/** Field labels inside Flex bubbles. */
export const LABEL = { order: '訂單', method: '付款方式' } as const;

/** Why a bank result was not accepted (owner alerts). */
export const MISMATCH = {
  bankVerifyFailed: (code: string) => `銀行回應驗證失敗（${code}）`,
  unknownTrade: '找不到對應的訂單',
  merchant: '商店代號不符',
  amount: (bank: number | null, ours: number) => `金額不符（銀行 ${bank ?? '-'}，訂單 ${ours}）`,
  payType: '付款方式不符',
  doublePayment: (orderNo: string) => `訂單 ${orderNo} 已付款，這筆是重複付款，請退款`,
  callbackAmount: (got: string, ours: number) => `通知金額 ${got} 與訂單金額 ${ours} 不符`,
} as const;

export const lowStockLine = (sku: string, name: string, available: number, onHand: number, reserved: number) =>
  `${sku} ${name}：可售 ${available}（庫存 ${onHand}、保留 ${reserved}）`;

/** Result pages opened in LINE's in-app browser. */
export const PAGE = {
  paidTitle: '付款成功',
  paidBody: '我們已收到你的付款，訂單確認會傳到 LINE 聊天室。',
  processingTitle: '付款處理中',
  processingBody: '銀行正在確認付款結果，確認後會在 LINE 通知你。',
  failedTitle: '付款未成功',
  failedBody: '這次付款沒有成功，你可以回到 LINE 再試一次，或改用其他付款方式。',
  retryPay: '重新付款',
  backToLine: '可以關閉此頁，回到 LINE 聊天室。',
  notFoundTitle: '找不到付款',
  notFoundBody: '這個付款連結無效或已過期。請回到 LINE 重新選擇付款方式。',
  expiredTitle: '訂單已逾期',
  expiredBody: '這筆訂單已超過付款期限。請回到 LINE 重新下單。',
  alreadyPaidTitle: '訂單已付款',
  alreadyPaidBody: '這筆訂單已完成付款，不需要再付一次。',
  supersededTitle: '付款連結已失效',
  supersededBody: '你已改用其他付款方式，這個連結不再有效。請使用 LINE 中最新的付款資訊。',
  ecpayRedirectTitle: '前往綠界付款',
  ecpayRedirectBody: '正在前往綠界付款頁面，請稍候…',
  ecpayRedirectButton: '前往付款',
} as const;

/**
 * The rich menus under the chat (`npm run richmenu`): chat-bar text (≤ 14 characters) and the
 * words drawn on each area, a label and a short hint below it.
 */
export const RICH_MENU = {
  shopperChatBar: '購物選單',
  ownerChatBar: '店長選單',
  products: { label: '商品', hint: '逛逛今天的好物' },
  cart: { label: '購物車', hint: '看購物車・結帳' },
  orders: { label: '訂單', hint: '付款與出貨進度' },
  member: { label: '會員', hint: '會員卡・付款碼' },
  wallet: { label: '錢包', hint: '餘額與儲值' },
  help: { label: '說明', hint: '怎麼買・常見問題' },
  today: { label: '今日訂單', hint: '今天的訂單與營收' },
  toShip: { label: '待出貨', hint: '已付款等你寄出' },
  stock: { label: '庫存', hint: '快賣完的商品' },
  admin: { label: '後台', hint: '開啟管理網頁' },
  ownerProducts: { label: '商品', hint: '顧客看到的商品' },
  ownerHelp: { label: '說明', hint: '店長指令一覽' },
} as const;

// ---------------------------------------------------------------------------------------------
// Delivery (ECPay logistics): recipient checks, store chains, parcel label, store-map pages.

/** Why recipient details were refused (ECPay's rules for store pickup, specs/ecpay-logistics.md §6.1). */
export const DELIVERY_ERRORS = {
  nameRequired: '請填寫收件人姓名。',
  nameChars: '收件人姓名只能有中文或英文字母，不能有數字、符號或空格。',
  nameLength: '收件人姓名須為 2 到 5 個中文字，或 4 到 10 個英文字母（取貨時要核對證件）。',
  phoneRequired: '請填寫手機號碼。',
  phoneFormat: '手機號碼須為 09 開頭的 10 位數字，例如 0912345678。',
  addressRequired: '請填寫收件地址。',
  addressLength: (min: number, max: number) => `收件地址須為 ${min} 到 ${max} 個字。`,
} as const;

/** Store chains as shoppers know them. */
export const CVS_CHAIN_NAME = { UNIMART: '7-ELEVEN', FAMI: '全家', HILIFE: '萊爾富', OKMART: 'OK超商' } as const;

/** ECPay GoodsName, printed on the parcel label: "珍珠奶茶等2件", or the fallback when nothing printable is left. */
export const DELIVERY_GOODS = {
  fallback: '網路商品一批',
  several: (first: string, count: number) => `${first}等${count}件`,
} as const;

/** Our page that sends the shopper's browser to ECPay's store map. */
export const DELIVERY_PAGE = {
  mapRedirectTitle: '選擇取貨門市',
  mapRedirectBody: '正在開啟超商門市地圖，請稍候…',
  mapRedirectButton: '開啟門市地圖',
  printRedirectTitle: '列印寄件單',
  printRedirectBody: '正在開啟綠界寄件單，請稍候…',
  printRedirectButton: '開啟寄件單',
} as const;
