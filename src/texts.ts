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
  at_store: '已到店待取',
  returned: '已退回',
};

export const METHOD_LABEL: Record<string, string> = {
  'sinopac-atm': '永豐 ATM 轉帳',
  'sinopac-card': '永豐 信用卡',
  'ecpay-credit': '綠界 信用卡',
  'ecpay-atm': '綠界 ATM 轉帳',
  'ecpay-cvs': '綠界 超商代碼',
  wallet: '錢包付款',
};

export const T = {
  welcome: (name?: string | null) =>
    [
      `${name ? `${name}，` : ''}歡迎光臨！🛍️ 在聊天室裡就能買東西：`,
      '1️⃣ 點下面的「逛商品」，把喜歡的加入購物車',
      '2️⃣ 到「購物車」確認數量，按「結帳」',
      '3️⃣ 選付款方式（ATM 轉帳、超商代碼或信用卡），付款後馬上通知你',
      '點下面的按鈕就好，不用打字喔！',
    ].join('\n'),
  help: [
    '🛒 購物說明',
    '・商品 (menu)：看商品，點「加入購物車」',
    '・購物車 (cart)：查看購物車、增減數量、結帳',
    '・cart <商品編號或SKU> <數量|+n|-n>：直接設定數量，0 代表移除',
    '・結帳 (checkout)：建立訂單並保留庫存，再選付款方式',
    '・訂單 (orders)：最近的訂單；訂單 <訂單編號>：訂單明細',
    '・取消 <訂單編號> (cancel)：取消尚未付款的訂單',
    '・點數 (points)：點數、會員等級與紀錄',
    '・錢包 (wallet)：錢包餘額、紀錄與儲值',
    '・會員 (member)：會員卡與門市付款碼（15 分鐘內使用一次）',
  ].join('\n'),
  ownerHelp: [
    '🔧 店長指令',
    '・今日訂單：今天的訂單',
    '・待出貨：已付款、還沒出貨的訂單',
    '・出貨 <訂單編號> [物流單號]：標記出貨並通知顧客',
    '・完成 <訂單編號>：標記訂單完成',
    '・庫存 <SKU> <數量>：設定現有庫存',
    '・庫存：低庫存清單',
    '・退款 <訂單編號> [金額]：信用卡退款（綠界），錢包付款退回錢包',
    '・收款 <會員付款碼> <金額>：門市收款，從會員錢包扣款',
    '・後台：取得網頁後台的登入連結',
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
  qtyInvalid: '數量請輸入 0 到 99 之間的整數，例如：cart TEA-001 2、cart TEA-001 +1、cart TEA-001 -1',
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
  ownerLowStockTitle: (threshold: number) => `📉 低庫存商品（可售 ≤ ${threshold}）`,
  ownerToShipEmpty: '目前沒有待出貨的訂單 👍',
  ownerToShipTitle: (n: number) => `🚚 待出貨 ${n} 筆（最早付款的在前）`,
  ownerToShipMore: (n: number) => `…還有 ${n} 筆，請到後台查看。`,
  ownerToShipHint: '出貨請輸入：出貨 <訂單編號> [物流單號]',
  itemCount: (n: number) => `${n} 件`,
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
  adminRefused: '後台只開放給店長使用，謝謝你的關心 🙏',
  adminLinkAlt: '店長後台登入連結（10 分鐘內有效）',
  adminLinkTitle: '🔐 店長後台',
  adminLinkBody: (expiresAt: Date) => `點下方按鈕登入後台。連結只能使用一次，${taipeiTime(expiresAt).slice(11)} 前有效。`,
  adminLinkHint: '請勿轉傳這個連結：拿到它的人可以用你的身分管理商店。',
  adminLinkButton: '登入後台',
  ownerDailySummary: (date: string, orders: number, paid: number, amount: number) =>
    `📊 ${date} 營業摘要\n訂單 ${orders} 筆，已付款 ${paid} 筆，收款 ${twd(amount)}`,
  summaryTitle: (date: string) => `📊 ${date} 營業摘要`,
  summaryOrders: '新訂單',
  summaryPaid: '已付款',
  summaryAmount: '收款',
  summaryByMethod: '收款方式',
  summaryTopProducts: '熱銷商品',
  summaryLowStock: (threshold: number) => `低庫存（可售 ≤ ${threshold}）`,
  summaryNone: '（無）',
  summaryMoreLowStock: (n: number) => `還有 ${n} 項，輸入「庫存」查看全部`,
  summaryMessages: '訊息用量',
  summaryMembers: '會員',
  summaryPushesToday: '今日推播',
  summaryPushesMonth: '本月推播',
  summaryLineUsage: 'LINE 本月用量',
  summaryQuota: (used: number, limit: number | null) => (limit === null ? `${used} 則（無上限）` : `${used} / ${limit} 則`),
  summaryQuotaUnknown: '無法取得',
  count: (n: number) => `${n} 筆`,
  messages: (n: number) => `${n} 則`,
  soldQty: (qty: number, amount: number) => `${qty} 件・${twd(amount)}`,
  methodTakings: (amount: number, orders: number) => `${twd(amount)}（${orders} 筆）`,
  availableUnits: (n: number) => `可售 ${n}`,

  ownerNewOrderAlt: (orderNo: string, total: number, shopper: string | null) => `🛒 新訂單 ${orderNo}：${twd(total)}${shopper ? `（${shopper}）` : ''}`,
  ownerNewOrderTitle: '🛒 新訂單',
  ownerNewOrderNoShipping: '未含運費：顧客選好寄送方式後加計，付款金額以訂單頁為準。',
  ownerNewOrderAltNoShipping: '（未含運費）',
  shopperUnnamed: '（未提供名稱）',
  ownerExpiredAlt: (orderNo: string, total: number) => `⌛ 訂單 ${orderNo} 逾期未付款，已自動取消（${twd(total)}）`,
  ownerExpiredTitle: '⌛ 訂單逾期未付',
  ownerCancelledAlt: (orderNo: string, total: number, by: string) => `❌ 訂單 ${orderNo} 已由${by}取消（${twd(total)}）`,
  ownerCancelledTitle: '❌ 訂單已取消',
  closedByShopper: (name: string | null) => (name ? `顧客 ${name}` : '顧客'),
  closedByOwner: (name: string | null) => (name ? `店長 ${name}` : '店長'),
  closedBySystem: '系統（付款期限已過）',
  stockReleased: '保留的商品已釋出，可以再賣給其他顧客。',
  ownerLowStockAlt: (name: string, sku: string, available: number) => `📉 庫存偏低：${name}（${sku}）剩 ${available} 件可售`,
  ownerLowStockNoticeTitle: '📉 庫存偏低',
  ownerSoldOutAlt: (name: string, sku: string) => `🚫 已售完：${name}（${sku}）`,
  ownerSoldOutTitle: '🚫 商品已售完',
  restockHint: (sku: string) => `補貨請輸入：庫存 ${sku} <數量>`,
  viewLowStock: '查看低庫存',
  viewInBackOffice: '在後台查看',
  ownerAlertTitle: '⚠️ 請留意',
  ownerRefundTitle: '💸 退款',

  reminderAlt: (orderNo: string, amount: number, deadline: Date) => `⏰ 訂單 ${orderNo} 還沒付款（${twd(amount)}），請在 ${taipeiTime(deadline)} 前完成付款`,
  reminderTitle: '⏰ 付款提醒',
  reminderBody: '這筆訂單還沒有付款喔！在期限前完成付款，商品就會繼續幫你保留。',
  reminderChoose: '還沒選付款方式？點下面任一個就可以付款：',
  copyAccount: '複製轉帳帳號',
  copyCode: '複製繳費代碼',

  shippedTitle: '🚚 已出貨',
  shippedBody: '你的訂單已經寄出，請留意收件通知 📦',
  shippedTrackHint: '點「複製物流單號」，再到物流公司網站貼上就能查詢貨態。',
  copyTracking: '複製物流單號',
  trackParcel: '查詢貨態',
  completedTitle: '✅ 訂單完成',
  refundedTitle: '💸 已退款',
  refundPartialNote: '這是部分退款，訂單其餘金額不變。',
  refundToCard: '退回原信用卡',
  refundBankNote: '實際入帳時間依銀行或發卡機構為準。',
} as const;

/** Quick reply labels (LINE: at most 20 characters each). */
export const QUICK = {
  menu: '🛍️ 逛商品',
  cart: '🛒 購物車',
  checkout: '💳 結帳',
  orders: '📦 我的訂單',
  help: '❓ 怎麼買',
  nextPage: '➡️ 下一頁',
  ownerToday: '📋 今日訂單',
  ownerToShip: '🚚 待出貨',
  ownerLowStock: '📉 低庫存',
} as const;

/** The commands the quick replies send, as if typed (command-parser.ts understands them). */
export const COMMAND = {
  menu: '商品',
  cart: '購物車',
  checkout: '結帳',
  orders: '訂單',
  help: '說明',
  ownerToday: '今日訂單',
  ownerToShip: '待出貨',
  ownerLowStock: '庫存',
} as const;

/** Carriers the owner ships with (line/carriers.ts knows their tracking pages). */
export const CARRIER_LABEL = {
  tcat: '黑貓宅急便',
  post: '中華郵政',
  hct: '新竹物流',
  seven: '7-ELEVEN',
  family: '全家',
  hilife: '萊爾富',
  ok: 'OK 超商',
} as const;

/** Field labels inside Flex bubbles. */
export const LABEL = {
  order: '訂單',
  method: '付款方式',
  shopper: '顧客',
  amount: '金額',
  holdUntil: '保留至',
  closedBy: '取消者',
  product: '商品',
  sku: 'SKU',
  available: '可售',
  deadline: '付款期限',
  carrier: '物流',
  tracking: '物流單號',
  refundAmount: '退款金額',
  refundVia: '退款方式',
  topupRef: '儲值 #',
} as const;

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

// ---------------------------------------------------------------------------------------------
// Members: points, tiers, wallet, member card, in-store charges, store devices.

/** 03/12 in Taipei time. */
const taipeiDay = (d: Date) => taipeiTime(d).slice(5, 10);

/** 95 折, 9 折, 85 折: the share paid, in tenths, as Taiwanese shops write it. */
export const zhe = (discountPercent: number): string => {
  const paid = 100 - discountPercent;
  return `${paid % 10 === 0 ? paid / 10 : paid} 折`;
};

/** Labels of order adjustments made by members (snapshotted on the order as the shopper saw them). */
export const ADJUSTMENT_LABEL = {
  tier: (tierName: string, discountPercent: number) => `${tierName} ${zhe(discountPercent)}`,
  points: (points: number) => `點數折抵 ${points.toLocaleString('en-US')} 點`,
} as const;

/** What a ledger entry was, as the shopper reads it. */
export const LEDGER_KIND: Record<string, string> = {
  earn: '消費累積',
  redeem: '折抵訂單',
  'redeem-return': '折抵退回',
  'redeem-late': '折抵訂單',
  'redeem-refund': '退款退回點數',
  clawback: '退款扣回',
  topup: '儲值',
  pay: '訂單付款',
  refund: '訂單退款',
  charge: '門市付款',
  pos: '門市消費',
};

/** Why a store device's offline purchase was not applied (owner notice). */
export const POS_REASON: Record<string, string> = {
  'insufficient-balance': '餘額不足',
  'unknown-member': '找不到會員',
  'code-used': '付款碼已使用過',
  'code-expired': '付款碼已失效',
  'txn-conflict': '交易編號重複但內容不同',
  'future-time': '交易時間不正確',
};

const signed = (n: number, money: boolean) => `${n < 0 ? '−' : '+'}${money ? twd(Math.abs(n)) : Math.abs(n).toLocaleString('en-US')}`;

export const M = {
  points: (n: number) => `${n.toLocaleString('en-US')} 點`,
  entryLabel: (at: Date, kind: string, ref: string | null) => `${taipeiDay(at)} ${LEDGER_KIND[kind] ?? kind}${ref ? ` ${ref}` : ''}`,
  entryValue: (amount: number, money: boolean) => signed(amount, money),
  noEntries: '還沒有紀錄',

  pointsTitle: '🎁 我的點數',
  pointsAlt: (balance: number, tier: string) => `點數 ${balance.toLocaleString('en-US')} 點・${tier}`,
  pointsLabel: '點數',
  tierLabel: '等級',
  tierValue: (name: string, discountPercent: number) => (discountPercent > 0 ? `${name}（${zhe(discountPercent)}）` : name),
  earnedLastYear: (n: number) => `近 12 個月累積 ${n.toLocaleString('en-US')} 點`,
  nextTier: (name: string, needed: number) => `再累積 ${needed.toLocaleString('en-US')} 點升級「${name}」`,
  topTier: '已是最高等級 👑',
  pointsHint: (pointsPerHundred: string, twdPerPoint: string) => `每消費 NT$100 累積 ${pointsPerHundred} 點；結帳時 1 點可折抵 NT$${twdPerPoint}。`,

  walletTitle: '👛 我的錢包',
  walletAlt: (balance: number) => `錢包餘額 ${twd(balance)}`,
  balanceLabel: '餘額',
  walletHint: '儲值後可在結帳時選「錢包付款」，或在門市出示會員卡付款。',
  topupButton: (amount: number) => `儲值 ${twd(amount)}`,
  topupTitle: '錢包儲值',
  topupAlt: (amount: number) => `錢包儲值 ${twd(amount)}，請選擇付款方式`,
  topupItem: (amount: number) => `錢包儲值 ${twd(amount)}`,
  topupPrompt: '請選擇付款方式。付款完成並經銀行確認後，金額會自動存入錢包。',
  topupCredited: (amount: number, balance: number) => `✅ 儲值成功：${twd(amount)}\n錢包餘額 ${twd(balance)}`,
  topupFailed: (amount: number) => `儲值 ${twd(amount)} 的付款沒有成功，錢包沒有變動。可以再試一次或選擇其他付款方式。`,
  topupPaid: '這筆儲值已經完成，不需要再付款。輸入「錢包」查看餘額。',
  topupExpired: '這個儲值按鈕已經過期，請輸入「錢包」重新選擇儲值金額。',
  topupUnknown: '找不到這筆儲值，請輸入「錢包」重新選擇儲值金額。',
  topupInvalidAmount: (amounts: readonly number[]) => `儲值金額請選擇：${amounts.map(twd).join('、')}。輸入「錢包」看看儲值按鈕。`,
  topupUnavailable: '目前沒有開放線上付款，暫時無法儲值 🙏',

  walletInsufficient: (balance: number, total: number) =>
    `錢包餘額不足：餘額 ${twd(balance)}，這筆訂單需要 ${twd(total)}。請先儲值（輸入「錢包」），或選擇其他付款方式。`,
  walletPaid: (orderNo: string, amount: number, balance: number) => `✅ 已從錢包付款 ${twd(amount)}（訂單 ${orderNo}），錢包餘額 ${twd(balance)}。`,
  refundToWallet: (orderNo: string, amount: number, balance: number) => `訂單 ${orderNo} 已退款 ${twd(amount)} 到你的錢包，目前餘額 ${twd(balance)}。`,
  ownerRefundedToWallet: (orderNo: string, amount: number, balance: number) => `已退款 ${twd(amount)} 到顧客錢包（訂單 ${orderNo}），顧客錢包餘額 ${twd(balance)}。`,
  receiptPoints: (n: number) => `本次獲得 ${n.toLocaleString('en-US')} 點 🎁`,

  redeemButton: (points: number, amount: number) => `用 ${points.toLocaleString('en-US')} 點折抵 ${twd(amount)}`,
  redeemed: (points: number, amount: number, balance: number) =>
    `已用 ${points.toLocaleString('en-US')} 點折抵 ${twd(amount)} 🎉（剩 ${balance.toLocaleString('en-US')} 點）請選擇付款方式。`,
  redeemAlready: '這筆訂單已經用點數折抵過了。',
  redeemAfterPayment: '這筆訂單已經選了付款方式，金額已送到銀行，不能再用點數折抵。想折抵的話，請取消訂單後重新結帳。',
  redeemNotPending: (orderNo: string, status: string) => `訂單 ${orderNo} 目前是「${status}」，不能用點數折抵。`,
  redeemNoPoints: (balance: number) => (balance > 0 ? `目前的 ${balance.toLocaleString('en-US')} 點不足以折抵這筆訂單。` : '目前沒有可以折抵的點數。'),

  cardTitle: '會員卡',
  cardAlt: (tier: string) => `會員卡（${tier}）：門市付款碼 15 分鐘內有效`,
  codeLabel: '付款碼',
  code: (code: string) => code.replace(/(\d{4})(?=\d)/g, '$1 '),
  codeValidUntil: (d: Date) => `有效至 ${taipeiTime(d).slice(11)}，限用一次`,
  cardHint: '門市結帳時出示 QR code，店員掃碼（或輸入付款碼）即從錢包扣款，會員折扣自動套用。重新產生後，舊的付款碼立即失效。',
  refreshCode: '重新產生付款碼',
  walletButton: '錢包',
  pointsButton: '點數紀錄',
  memberButton: '會員卡',

  chargeShopper: (r: { amount: number; discount: number; tierName: string; paid: number; balance: number; pointsEarned: number }) =>
    [
      `✅ 門市付款成功：${twd(r.paid)}`,
      r.discount > 0 ? `原價 ${twd(r.amount)}，${r.tierName}會員折扣 −${twd(r.discount)}` : null,
      `錢包餘額 ${twd(r.balance)}`,
      r.pointsEarned > 0 ? `本次獲得 ${r.pointsEarned.toLocaleString('en-US')} 點 🎁` : null,
    ].filter(Boolean).join('\n'),
  chargeOwner: (r: { who: string; amount: number; discount: number; tierName: string; paid: number; codeTail: string; at: Date }) =>
    [
      `💰 門市收款成功：${twd(r.paid)}`,
      `會員：${r.who}（${r.tierName}）`,
      r.discount > 0 ? `原價 ${twd(r.amount)}，會員折扣 −${twd(r.discount)}` : null,
      `付款碼末四碼 ${r.codeTail}・${taipeiTime(r.at)}`,
    ].filter(Boolean).join('\n'),
  memberFallbackName: '會員',
  ownerChargeUsage: '用法：收款 <會員付款碼> <金額>，例如：收款 1234 5678 9012 3456 350',
  ownerChargeUnknown: '找不到這個付款碼，請確認 16 位數字，或請顧客在「會員」重新產生。',
  ownerChargeUsed: '這個付款碼已經使用過了，請顧客在「會員」重新產生。',
  ownerChargeReplaced: '這個付款碼已經失效（顧客產生了新的付款碼），請使用最新的付款碼。',
  ownerChargeExpired: '這個付款碼已超過 15 分鐘失效，請顧客在「會員」重新產生。',
  ownerChargeInvalidAmount: '金額請輸入 1 到 1,000,000 之間的整數。',
  ownerChargeInsufficient: (balance: number, due: number) => `顧客錢包餘額不足：需付 ${twd(due)}，餘額 ${twd(balance)}。沒有扣款，付款碼仍可使用。`,

  ownerPointsShortfall: (orderNo: string, due: number, taken: number) =>
    `⚠️ 訂單 ${orderNo} 退款應扣回 ${due.toLocaleString('en-US')} 點，但顧客點數已用掉，只扣回 ${taken.toLocaleString('en-US')} 點；不足 ${(due - taken).toLocaleString('en-US')} 點已記錄在點數紀錄，請自行決定如何處理。`,
  ownerPosRejected: (deviceId: string, lines: string[]) => `⚠️ 門市裝置 ${deviceId} 上傳的離線交易有 ${lines.length} 筆沒有入帳：\n${lines.join('\n')}`,
  posRejectedLine: (txnNo: string, amount: number, reason: string) => `・${txnNo} ${twd(amount)}：${POS_REASON[reason] ?? reason}`,
  dailySummaryMembers: (topups: number, topupAmount: number, points: number) =>
    `錢包儲值 ${topups} 筆，${twd(topupAmount)}；發出點數 ${points.toLocaleString('en-US')} 點`,
} as const;

/** The back office's members pages and its 收款 form (labels 付款碼, 金額; button 收款). */
export const ADMIN_MEMBERS = {
  title: '會員',
  chargeTitle: '門市收款',
  chargeHint: '掃描顧客會員卡的 QR code（或輸入 16 位付款碼）與金額；會員折扣自動套用，從顧客錢包扣款。',
  code: '付款碼',
  amount: '金額',
  charge: '收款',
  codeInvalid: '付款碼是 16 位數字（可含空格或 -）。',
  amountInvalid: '金額請輸入 1 到 1,000,000 之間的整數。',
  listTitle: '會員與餘額',
  empty: '還沒有會員使用點數或錢包。',
  member: '會員',
  points: '點數',
  wallet: '錢包餘額',
  tier: '等級',
  lastActive: '最近異動',
  detailTitle: (name: string) => `會員 ${name}`,
  pointsLedger: '點數紀錄',
  walletLedger: '錢包紀錄',
  when: '時間',
  what: '項目',
  change: '異動',
  balanceAfter: '異動後',
  shortfall: (n: number) => `不足 ${n.toLocaleString('en-US')} 點未扣回`,
  noEntries: '沒有紀錄',
} as const;

/** The owner's back office (web pages under /admin). Form labels and buttons follow CONTRACT.md. */
export const ADMIN = {
  appName: '店長後台',
  nav: { dashboard: '總覽', products: '商品', categories: '分類', orders: '訂單', members: '會員', audit: '紀錄' },
  logout: '登出',
  save: '儲存',
  search: '搜尋',
  exportCsv: '匯出 CSV',
  all: '全部',
  none: '—',
  prev: '上一頁',
  next: '下一頁',
  older: '更早的紀錄',
  pageOf: (page: number, pages: number, total: number) => `第 ${page}/${pages} 頁，共 ${total} 筆`,

  loginHelpTitle: '請從 LINE 登入',
  loginHelpBody: '在 LINE 對商店官方帳號傳送「後台」，點開收到的「登入後台」按鈕就能進來。登入連結 10 分鐘內有效，只能使用一次。',
  loginLinkUsedTitle: '這個登入連結已經用過了',
  loginLinkExpiredTitle: '登入連結已過期',
  loginLinkInvalidTitle: '登入連結無效',
  loginNotOwnerTitle: '這個 LINE 帳號沒有後台權限',
  loginAgain: '請回到 LINE 再傳一次「後台」，取得新的登入連結。',
  loginNotOwnerBody: '只有商店設定中的店長可以使用後台。',
  sessionGoneTitle: '登入已失效',
  sessionGoneBody: '為了安全，這次的操作沒有執行。請回到 LINE 傳送「後台」重新登入。',
  forbiddenTitle: '無法執行',
  forbiddenBody: '這個表單已失效（可能開太久或來自其他網站），沒有做任何變更。請重新整理頁面再試一次。',
  notFoundTitle: '找不到這個頁面',
  tooLargeTitle: '上傳的檔案太大',
  tooLargeBody: '圖片請在 10 MB 以內，沒有做任何變更。',
  errorTitle: '系統忙碌中',
  errorBody: (code: string) => `請稍後再試一次。（代碼：${code}）`,
  back: '回上一頁',
  loggedOut: '已登出。',

  dashboard: {
    title: '總覽',
    today: '今日',
    month: '本月',
    placed: '新訂單',
    paid: '已付款',
    revenue: '營收',
    refunded: '已退款',
    method: '付款方式',
    orders: '筆數',
    amount: '金額',
    noPayments: '還沒有付款。',
    toShip: (n: number) => `待出貨（${n}）`,
    toShipEmpty: '沒有待出貨的訂單。',
    unpaid: (n: number) => `未付款（${n}）`,
    unpaidEmpty: '沒有等待付款的訂單。',
    holdUntil: '保留至',
    lowStock: (threshold: number) => `低庫存（可售 ≤ ${threshold}）`,
    lowStockEmpty: '所有上架商品庫存充足。',
    quota: 'LINE 推播用量（本月）',
    quotaUsed: (used: number, limit: number | null) =>
      limit === null ? `已推播 ${used.toLocaleString('en-US')} 則（方案無上限）` : `已推播 ${used.toLocaleString('en-US')} / ${limit.toLocaleString('en-US')} 則`,
    quotaUnavailable: '暫時無法向 LINE 取得用量。',
    quotaHint: '回覆訊息不計入；付款、出貨等通知用推播。',
    available: '可售',
  },

  products: {
    title: '商品',
    newProduct: '新增商品',
    editProduct: '編輯商品',
    searchPlaceholder: '搜尋名稱、SKU 或說明',
    allCategories: '全部分類',
    sortLabel: '排序',
    sorts: { position: '預設順序', name: '名稱', price: '價格低到高', 'price-desc': '價格高到低', available: '可售少到多', updated: '最近更新' } as Record<string, string>,
    empty: '沒有符合的商品。',
    active: '上架中',
    inactive: '已下架',
    stockLine: (available: number, onHand: number, reserved: number) => `可售 ${available}（庫存 ${onHand}、保留 ${reserved}）`,
    noPhoto: '尚無圖片',
  },
  productForm: {
    name: '名稱',
    sku: 'SKU',
    skuHint: '英文字母、數字、-、_、.，不分大小寫，不可重複',
    price: '價格',
    priceHint: '新台幣，整數',
    category: '分類',
    description: '說明',
    photo: '圖片',
    photoHint: 'JPEG、PNG、WebP，10 MB 以內；會自動轉正、縮成 LINE 適用的 1024 px JPEG，並移除位置等資訊。',
    photoCurrent: '目前的圖片',
    active: '上架',
    activeHint: '取消勾選就不會出現在商品目錄',
    stock: '庫存',
    stockHint: '現有數量；不能少於未付款訂單保留的數量',
    reason: '原因',
    reasonPlaceholder: '例如：進貨、盤點、損壞',
    stockTitle: '庫存',
    initialStockReason: '新增商品',
    saved: '已儲存。',
    created: (name: string) => `已新增商品「${name}」。`,
    photoSaved: '已更新圖片。',
    stockSet: (qty: number, available: number) => `庫存已設為 ${qty}（可售 ${available}）。`,
    stockBelowReserved: (reserved: number) => `目前有 ${reserved} 件被未付款訂單保留，庫存不能少於 ${reserved}。`,
    fixErrors: '請修正標示的欄位。',
  },
  fieldError: {
    required: '請填寫這個欄位',
    'too-long': '太長了',
    invalid: '格式不正確',
    taken: '已經被使用了',
    'unknown-category': '請選擇分類',
    'out-of-range': '超出範圍',
  } as Record<string, string>,
  fieldErrorFor: {
    sku: { invalid: '只能使用英文字母、數字、-、_、.（最多 40 字）', taken: '這個 SKU 已有其他商品使用' },
    price: { invalid: '請輸入整數金額', 'out-of-range': '價格需在 NT$1 到 NT$1,000,000 之間' },
    stock: { invalid: '請輸入 0 以上的整數', 'out-of-range': '數量太大了' },
    name: { 'too-long': '名稱最多 100 字', taken: '已經有同名的分類' },
    description: { 'too-long': '說明最多 2,000 字' },
    reason: { required: '請寫下原因（會記在紀錄裡）', 'too-long': '原因最多 200 字' },
  } as Record<string, Record<string, string>>,
  photoRefused: {
    empty: '沒有收到圖片檔。',
    'too-large': '圖片超過 10 MB，請換一張較小的照片。',
    'not-image': '這個檔案不是圖片。請上傳 JPEG、PNG 或 WebP 照片。',
    unsupported: '不支援這種圖片格式。請上傳 JPEG、PNG 或 WebP 照片。',
    heic: '無法讀取 HEIC 照片。請在 iPhone「設定 › 相機 › 格式」選「最相容」，或改傳 JPEG。',
    'too-many-pixels': '圖片解析度太高（超過 5,000 萬像素），請縮小後再上傳。',
    unreadable: '圖片檔已損壞或無法讀取，請換一張。',
  } as Record<string, string>,

  categories: {
    title: '分類',
    name: '名稱',
    products: (n: number) => `${n} 件商品`,
    up: '上移',
    down: '下移',
    add: '新增分類',
    created: (name: string) => `已新增分類「${name}」。`,
    renamed: (name: string) => `已改名為「${name}」。`,
    moved: '已調整順序。',
    empty: '還沒有分類。',
  },

  orders: {
    title: '訂單',
    status: '狀態',
    from: '從',
    to: '到',
    searchPlaceholder: '訂單編號、顧客或商品',
    empty: '沒有符合的訂單。',
    orderNo: '訂單編號',
    time: '時間',
    shopper: '顧客',
    content: '內容',
    amount: '金額',
    exportHint: '匯出所選日期範圍的訂單（每個商品一列）。',
  },
  order: {
    title: (orderNo: string) => `訂單 ${orderNo}`,
    shopper: '顧客',
    unknownShopper: '（尚無名稱）',
    unfollowed: '已封鎖或刪除好友',
    placedAt: '下單時間',
    paidAt: '付款時間',
    holdUntil: '保留至',
    method: '付款方式',
    lines: '明細',
    total: '總計',
    paidAmount: '已收款',
    refundedAmount: '已退款',
    payments: '付款紀錄',
    tradeNo: '交易編號',
    bankTradeId: '銀行端編號',
    noPayments: '還沒有付款紀錄。',
    refunds: '退款紀錄',
    delivery: '配送',
    shipping: '出貨',
    carrier: '物流',
    carrierHint: '例如：黑貓宅急便、新竹物流、中華郵政',
    tracking: '追蹤碼',
    ship: '出貨',
    complete: '完成',
    cancel: '取消訂單',
    refund: '退款',
    amount: '金額',
    refundHint: (max: number) => `最多可退 ${twd(max)}；留白代表全額。`,
    refundOffline: '這筆付款無法線上退款，請到銀行後台處理。',
    refundAmountInvalid: '請輸入整數金額，或留白代表全額',
    trackingInvalid: '追蹤碼只能有英文字母、數字和 -',
    trackingTooLong: '物流最多 40 字、追蹤碼最多 60 字',
    confirmCancel: '確定要取消這筆訂單並釋出庫存嗎？',
    confirmRefund: '確定要退款嗎？退款送出後無法撤回。',
    timeline: '歷程',
    audit: '操作紀錄',
    shippedInfo: (carrier: string | null, tracking: string | null) => [carrier, tracking].filter(Boolean).join(' ・ ') || '—',
    refundLine: (amount: number) => `退款 ${twd(amount)}`,
    actor: { shopper: '顧客', bank: '銀行', system: '系統', owner: '店長' } as Record<string, string>,
    attemptStatus: { creating: '建立中', pending: '等待付款', paid: '已付款', failed: '失敗', superseded: '已改用其他方式' } as Record<string, string>,
    refundStatus: { pending: '處理中', succeeded: '已退款', failed: '失敗' } as Record<string, string>,
    refundUnknown: '結果不明，請到綠界後台確認',
    adjustment: '費用／折扣',
  },

  audit: {
    title: '操作紀錄',
    action: '動作',
    source: '來源',
    target: '對象',
    who: '人員',
    when: '時間',
    before: '之前',
    after: '之後',
    reason: '原因',
    from: '來自',
    sources: { line: 'LINE 聊天', web: '網頁後台', system: '系統' } as Record<string, string>,
    groups: { order: '訂單', refund: '退款', stock: '庫存', product: '商品', category: '分類', session: '登入' } as Record<string, string>,
    actions: {
      'order.ship': '出貨',
      'order.complete': '完成訂單',
      'order.cancel': '取消訂單',
      'order.store': '更新取件門市',
      'refund.request': '申請退款',
      'stock.set': '設定庫存',
      'product.create': '新增商品',
      'product.update': '編輯商品',
      'product.photo': '更換圖片',
      'category.create': '新增分類',
      'category.rename': '分類改名',
      'category.reorder': '分類排序',
      'session.link': '取得登入連結',
      'session.login': '登入後台',
      'session.logout': '登出後台',
    } as Record<string, string>,
    empty: '沒有符合的紀錄。',
    /** Names of the fields an audit row's before/after may carry. */
    fields: {
      status: '狀態', tracking: '追蹤碼', carrier: '物流', sku: 'SKU', onHand: '庫存', reserved: '保留', name: '名稱', price: '價格',
      active: '上架', category_id: '分類', description: '說明', image: '圖片', amount: '金額', method: '付款方式', order: '順序',
      width: '寬', height: '高', bytes: '大小',
    } as Record<string, string>,
    yes: '是',
    no: '否',
  },

  csv: {
    orders: ['訂單編號', '下單時間', '狀態', '顧客', '付款方式', '付款時間', '訂單金額', '已收款', '已退款', '類型', 'SKU', '品名', '單價', '數量', '小計', '物流', '追蹤碼'],
    products: ['商品 ID', 'SKU', '名稱', '分類', '價格', '上架', '庫存', '保留', '可售', '說明', '圖片網址'],
    goods: '商品',
    adjustment: '費用／折扣',
    yes: '是',
    no: '否',
  },
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
  methodRequired: '請選擇寄送方式。',
  chainRequired: '請先選擇要取貨的超商。',
  storeRequired: '請按「選擇門市」選好取貨門市。',
  zipFormat: '郵遞區號須為 3 碼、5 碼或 6 碼數字（可不填）。',
} as const;

/** Delivery at checkout: the chat's words (methods, summary, prompts). */
export const DELIVERY_TEXT = {
  home: '宅配',
  cvs: (chain: string) => `${chain} 取貨`,
  feeLabel: (method: string) => `運費（${method}）`,
  free: '免運費',
  chooseTitle: '請選擇寄送方式',
  choosePrompt: '選好寄送方式並填寫收件資料後，就可以付款。',
  freeOver: (amount: number) => `商品滿 ${twd(amount)} 免運費`,
  useLast: (summary: string) => `沿用上次：${summary}`,
  useLastLabel: '沿用上次收件資料',
  fillDetails: '填寫收件資料',
  changeDetails: '修改收件資料',
  linkTitle: (method: string) => `${method}：填寫收件資料`,
  linkBody: (until: string) => `請點下方按鈕填寫收件人與地址或門市，連結有效至 ${until}。`,
  linkButton: '填寫收件資料',
  linkAlt: (orderNo: string) => `訂單 ${orderNo}：請填寫收件資料`,
  readyTitle: '收件資料已完成',
  readyAlt: (orderNo: string) => `訂單 ${orderNo} 收件資料已完成，請選擇付款方式`,
  storeChosen: (chain: string, name: string, address: string) => `已選擇取貨門市：${chain} ${name}（${address}）`,
  storeChosenNext: '請回到頁面填寫收件人姓名與手機，按「確認」完成。',
  method: '寄送方式',
  recipient: '收件人',
  store: '取貨門市',
  address: '收件地址',
  shipment: '物流單號',
  shipmentState: '物流狀態',
  deliveryFirst: (orderNo: string) => `訂單 ${orderNo} 還沒填寫收件資料，請先選擇寄送方式並填寫收件資料，再選擇付款方式。`,
  noProfile: '找不到可沿用的收件資料，請選擇寄送方式重新填寫。',
  closed: (orderNo: string, status: string) => `訂單 ${orderNo} 目前是「${status}」，無法再修改收件資料。`,
  paymentStarted: (orderNo: string) => `訂單 ${orderNo} 已開始付款，收件資料無法再修改。如需更改請聯絡店家。`,
  methodUnavailable: '這個寄送方式目前沒有提供，請選擇其他方式。',
} as const;

/** Shipment states (shipments.status) as shoppers read them. */
export const SHIPMENT_STATE_LABEL: Record<string, string> = {
  creating: '建立中',
  created: '待寄出',
  shipped: '已寄出',
  in_transit: '配送中',
  arrived_at_store: '已到店，可取貨',
  picked_up: '已取貨',
  returned: '已退回',
  store_closed: '門市暫停營業，需重選門市',
  failed: '建立失敗',
  unknown: '確認中',
  cancelled: '已取消',
};

/** The delivery details page (/delivery/:ref). */
export const DELIVERY_FORM = {
  title: '填寫收件資料',
  order: (orderNo: string) => `訂單 ${orderNo}`,
  methodLegend: '寄送方式',
  feeSuffix: (fee: number) => (fee === 0 ? '免運費' : `運費 ${twd(fee)}`),
  name: '收件人',
  nameHint: '2–5 個中文字或 4–10 個英文字母，取貨時須與證件相符',
  phone: '手機',
  phoneHint: '09 開頭 10 碼，到貨時會收到簡訊',
  zip: '郵遞區號（選填）',
  address: '地址',
  store: '取貨門市',
  noStore: '尚未選擇門市',
  chooseStore: '選擇門市',
  changeStore: '更換門市',
  storeHint: '會開啟超商的門市地圖，選好後自動回到這一頁。',
  submit: '確認',
  errorsTitle: '請修正以下欄位：',
  total: '合計（含運費）',
  goods: '商品小計',
  holdUntil: (until: string) => `訂單保留至 ${until}，請在此之前完成付款。`,
  savedTitle: '收件資料已儲存',
  savedBody: '請回到 LINE 選擇付款方式。',
  readyNote: '收件資料已完成，可以修改後再按「確認」。',
  closedTitle: '無法修改收件資料',
  notFoundBody: '找不到這個連結，請回到 LINE 重新開啟。',
  linkExpiredBody: '這個連結已過期，請回到 LINE 重新選擇寄送方式。',
  orderClosedBody: '這筆訂單已取消或已逾期，請回到 LINE 重新下單。',
  orderPaidBody: '這筆訂單已付款，收件資料無法再修改。如需更改請聯絡店家。',
  paymentStartedBody: '這筆訂單已開始付款，收件資料無法再修改。如需更改請聯絡店家。',
  badReplyTitle: '門市資料有誤',
  badReplyBody: '無法讀取所選的門市，請回到頁面重新選擇。',
  forbiddenTitle: '無法送出',
  forbiddenBody: '表單已過期，請重新開啟頁面再試一次。',
  errorTitle: '暫時無法處理',
  errorBody: '系統忙碌中，請稍後再試。',
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

/** Shipping an order: store pickup at ECPay (drop-off codes, status changes) and home delivery. */
/** A shipped parcel's pickup store closed: the shopper's push, page and confirmation (§8 bot flow). */
export const STORE_CHANGE = {
  closedAlt: (orderNo: string) => `訂單 ${orderNo} 的取件門市關轉，請重選門市`,
  closedTitle: '取件門市關轉，請重選門市',
  closedBody: (chain: string, store: string, until: string) =>
    `你選的取件門市「${store}」已關轉或暫停營業，包裹無法送達。請在 ${until} 前點下方按鈕，從 ${chain} 的門市地圖重選一家門市（只能選同一家超商）。沒有重選的話，包裹會被退回店家。`,
  button: '重選取件門市',
  changedShopper: (orderNo: string, chain: string, store: string, address: string | null) =>
    `已更新訂單 ${orderNo} 的取件門市：${chain}「${store}」${address ? `\n${address}` : ''}\n包裹會改送這家門市，到店時會再通知你。`,
  // The page.
  pageTitle: '重選取件門市',
  order: (orderNo: string) => `訂單 ${orderNo}`,
  closedStore: '已關轉的門市',
  chain: '超商',
  intro: (chain: string) => `原本的取件門市已關轉或暫停營業。請從 ${chain} 的門市地圖選一家新的門市，我們會通知綠界改送。`,
  chooseStore: '開啟門市地圖',
  doneTitle: '取件門市已更新',
  doneBody: '這張訂單的新取件門市已經設定好了，不需要再選。包裹到店時會通知你。',
  currentStore: '取件門市',
  updatedTitle: '已更新取件門市',
  updatedBody: '綠界已接受新的取件門市，包裹會改送這家門市。LINE 也傳了確認訊息給你。',
  failedTitle: '門市沒有更新',
  refusedBody: '綠界沒有接受這家門市（可能也暫停營業或無法收件），取件門市沒有變更。請回上一頁再選一次其他門市；若一直不成功，請直接在 LINE 聊天室聯絡店家。',
  unavailableBody: '綠界暫時沒有回應，取件門市沒有變更。請稍後回上一頁再試一次；若一直不成功，請直接在 LINE 聊天室聯絡店家。',
  busyBody: '剛才的門市正在送交綠界處理中，請稍候幾秒後重新整理這一頁。',
  tryAgain: '回上一頁重新選擇',
  expiredTitle: '連結已過期',
  expiredBody: '這個重選門市的連結已過期。請直接在 LINE 聊天室聯絡店家協助更改取件門市。',
  notFoundTitle: '找不到這個連結',
  notFoundBody: '連結不正確或已失效。請從 LINE 聊天室裡的訊息重新開啟，或聯絡店家。',
  notNeededTitle: '不需要重選門市',
  notNeededBody: '這張訂單的包裹目前不需要（或已無法）更改取件門市。有問題請在 LINE 聊天室聯絡店家。',
  badReplyTitle: '門市資料有誤',
  badReplyBody: '門市地圖傳回的資料無法使用（可能選了其他超商的門市）。請回上一頁重新選擇同一家超商的門市。',
} as const;

export const SHIPMENT = {
  // Owner: answers to 出貨 (chat and back office).
  creating: (orderNo: string) => `正在向綠界建立 ${orderNo} 的超商寄件單，完成後會傳寄件代碼給你。`,
  alreadyCreating: (orderNo: string) => `${orderNo} 的寄件單正在建立中，完成後會傳寄件代碼給你。`,
  alreadyCreated: (orderNo: string, code: string) => `${orderNo} 已建立寄件單，寄件代碼：${code}`,
  noLogistics: (orderNo: string) => `${orderNo} 是超商取貨訂單，但尚未設定綠界物流（ECPAY_LOGISTICS_*），無法建立寄件單。`,
  noStore: (orderNo: string) => `${orderNo} 還沒有取件門市，無法建立寄件單。`,
  // Owner pushes.
  createdTitle: '寄件單已建立',
  created: (a: { orderNo: string; chain: string; store: string; shipmentNo: string; validationNo: string; code: string; deadline: string }) =>
    [
      `訂單 ${a.orderNo} 的超商寄件單已建立。`,
      `超商：${a.chain}`,
      `取件門市：${a.store}`,
      `寄件編號：${a.shipmentNo}${a.validationNo ? `（驗證碼 ${a.validationNo}）` : ''}`,
      `到店寄件代碼：${a.code}`,
      `請在 ${a.deadline} 前到任一家${a.chain}門市，用店內機台（${a.chain === '7-ELEVEN' ? 'ibon' : a.chain === '全家' ? 'FamiPort' : a.chain === '萊爾富' ? 'Life-ET' : 'OK.go'}）輸入寄件代碼列印寄件單後交寄。`,
    ].join('\n'),
  failedTitle: '寄件單建立失敗',
  failed: (orderNo: string, reason: string) => `訂單 ${orderNo} 的超商寄件單沒有建立成功：${reason}\n處理後可再輸入「出貨 ${orderNo}」重試。`,
  reasonStore: '取件門市不存在或已關轉，請聯絡買家改選門市。',
  reasonMac: '綠界物流金鑰不正確（請確認 ECPAY_LOGISTICS_HASH_KEY / HASH_IV，物流金鑰和金流不同）。',
  reasonOther: (msg: string) => `綠界回覆「${msg}」。`,
  reasonRecipient: '收件人姓名或手機不符合綠界規定，請和買家確認。',
  reasonExpired: '包裹沒有在寄件期限內交寄，這張寄件單已失效，需要重新建立。',
  unknownTitle: '寄件單狀態未明',
  unknown: (orderNo: string) => `訂單 ${orderNo} 建立寄件單時綠界沒有回應，系統會再向綠界查詢，查到結果會通知你。`,
  returnedOwnerTitle: '包裹退回',
  returnedOwner: (orderNo: string, store: string) =>
    `訂單 ${orderNo} 的包裹買家沒有到「${store}」取貨，已退回。請到寄件門市取回包裹，並和買家聯絡是否重寄或退款（退款：退款 ${orderNo}）。`,
  storeClosedTitle: '取件門市關轉',
  storeClosed: (orderNo: string, store: string) =>
    `訂單 ${orderNo} 的取件門市「${store}」已關轉或暫停營業。請聯絡買家改選同一家超商的其他門市，再到後台這張訂單的「更新取件門市」填入新門市（會通知綠界）；若沒有更新，包裹會被退回。`,
  storeClosedAsked: (orderNo: string, store: string) =>
    `訂單 ${orderNo} 的取件門市「${store}」已關轉或暫停營業。已傳連結請買家在綠界地圖重選同一家超商的門市，選好後會自動通知綠界並告訴你；買家沒回應時，也可以在後台這張訂單的「更新取件門市」填入新門市。`,
  storeChangedOwnerTitle: '買家已重選門市',
  storeChangedOwner: (orderNo: string, oldStore: string, store: string, address: string) =>
    `訂單 ${orderNo} 的買家已把取件門市從「${oldStore}」改為「${store}」${address ? `（${address}）` : ''}，綠界已更新，包裹會改送新門市。`,
  problemTitle: '物流異常',
  problem: (orderNo: string, code: string, msg: string) => `訂單 ${orderNo} 的包裹有異常（${code} ${msg}），請到綠界物流後台查看。`,
  // Shopper pushes.
  arrivedTitle: '包裹已到店',
  arrived: (orderNo: string, store: string, deadline: string) => `你的訂單 ${orderNo} 已送達「${store}」，請在 ${deadline} 前帶證件到店取貨。`,
  returnedTitle: '包裹已退回',
  returned: (orderNo: string) =>
    `你的訂單 ${orderNo} 的包裹沒有在期限內取貨，已退回給店家。店家會和你聯絡重新寄送或退款；也可以直接在這裡留言。`,
  pickupCarrier: (chain: string) => `${chain} 店到店`,
  // Back office.
  section: '配送',
  method: '配送方式',
  home: '宅配',
  cvs: (chain: string) => `超商取貨（${chain}）`,
  none: '未選擇',
  recipient: '收件人',
  phone: '手機',
  address: '地址',
  store: '取件門市',
  shipmentNo: '寄件編號',
  dropOffCode: '寄件代碼',
  shipmentStatus: '物流狀態',
  pickupDeadline: '取貨期限',
  history: '物流紀錄',
  noHistory: '尚無物流紀錄',
  printLabel: '列印寄件單',
  noLabel: '這張訂單目前沒有可列印的寄件單。',
  changeStore: '更新取件門市',
  changeStoreHint: '取件門市關轉了：請買家改選同一家超商的門市，填入新門市後送出，系統會通知綠界。',
  shopperAsked: (until: string) => `已傳連結請買家在綠界地圖重選門市（${until} 前有效），買家選好會自動更新；也可以在這裡直接填入。`,
  storeIdLabel: '門市代號',
  storeNameLabel: '門市名稱',
  storeIdInvalid: '門市代號是 4 到 6 位數字。',
  storeNameInvalid: '請填寫門市名稱（最多 10 個字）。',
  storeUpdated: (orderNo: string, name: string) => `已把 ${orderNo} 的取件門市改為「${name}」，並通知綠界。`,
  storeUpdateRefused: (orderNo: string, msg: string) => `綠界沒有接受 ${orderNo} 的新門市：${msg}`,
  storeUpdateNotPossible: (orderNo: string) => `${orderNo} 目前沒有需要更新門市的包裹。`,
  storeUpdateBusy: (orderNo: string) => `${orderNo} 的新門市正在送交綠界（可能是買家剛選好），請稍後重新整理查看。`,
  storeUpdateUnavailable: (orderNo: string) => `綠界暫時沒有回應，${orderNo} 的門市沒有變更，請稍後再試。`,
  shipCvs: '出貨（建立超商寄件單）',
  shipCvsHint: '會向綠界建立寄件單，寄件代碼會顯示在這裡並傳到 LINE。',
  status: {
    creating: '建立中',
    unknown: '查詢中',
    created: '待寄件',
    shipped: '運送中',
    arrived_at_store: '已到店',
    picked_up: '已取貨',
    returned: '已退回',
    failed: '建立失敗',
    cancelled: '已取消',
  } as Record<string, string>,
  outcome: { applied: '已套用', duplicate: '重複', rejected: '拒絕' } as Record<string, string>,
} as const;
