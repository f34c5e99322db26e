import type { Order } from '../../src/domain/orders';
import { EcpayLogisticsSandbox, startEcpayLogisticsSandbox } from '../../src/sandbox/ecpay-logistics-sandbox';
import type { DeliveryDetails } from '../../src/domain/delivery';
import { completeDelivery, payBySinopacAtm, placeOrder } from './orders';
import { ShopOptions, startShop, TestShop } from './shop';

/** ECPay's public stage C2C logistics account (specs/ecpay-logistics.md §2). */
export const LOGISTICS_C2C = { merchantId: '2000933', hashKey: 'XBERn1YOvpM9nfZc', hashIv: 'h1ONHk4P4yqbl5LK', kind: 'C2C' as const };

export interface LogisticsShop extends TestShop {
  logistics: EcpayLogisticsSandbox;
}

/** A shop (SinoPac for paying, workers on) whose store pickup goes to a local ECPay logistics sandbox. */
export async function startLogisticsShop(o: ShopOptions & { notifyRetryDelaysMs?: number[] }): Promise<LogisticsShop> {
  const logistics = await startEcpayLogisticsSandbox({ merchants: [LOGISTICS_C2C], notifyRetryDelaysMs: o.notifyRetryDelaysMs ?? [300, 600, 1000] });
  const shop = await startShop({
    sinopac: true,
    ...o,
    env: {
      ECPAY_LOGISTICS_MERCHANT_ID: LOGISTICS_C2C.merchantId,
      ECPAY_LOGISTICS_HASH_KEY: LOGISTICS_C2C.hashKey,
      ECPAY_LOGISTICS_HASH_IV: LOGISTICS_C2C.hashIv,
      ECPAY_LOGISTICS_SENDER_NAME: '陳大明',
      ECPAY_LOGISTICS_SENDER_CELLPHONE: '0911222333',
      ECPAY_LOGISTICS_API_BASE_URL: logistics.url,
      ...o.env,
    },
  });
  const close = shop.close.bind(shop);
  return Object.assign(shop, {
    logistics,
    async close() {
      await close();
      await logistics.close();
    },
  });
}

export interface PickupChoice {
  subType?: string;
  storeId?: string;
  storeName?: string;
  storeAddress?: string;
}

/**
 * A paid store-pickup order: checked out in the chat, its delivery completed through checkout's use
 * case (DeliveryCheckout.complete, as the store map's reply ends), then paid by SinoPac ATM.
 */
export async function paidPickupOrder(shop: TestShop, user: string, pick: PickupChoice = {}, sku = 'TEA-001', qty = 1): Promise<Order> {
  const order = await placeOrder(shop, user, sku, qty, { delivery: false });
  await completeDelivery(shop, order, {
    method: 'cvs',
    subType: (pick.subType ?? 'UNIMARTC2C') as DeliveryDetails['subType'],
    recipientName: '王小美',
    recipientPhone: '0933222111',
    recipientZip: null,
    recipientAddress: null,
    storeId: pick.storeId ?? '131386',
    storeName: pick.storeName ?? '鑫忠孝門市',
    storeAddress: pick.storeAddress ?? '臺北市中正區忠孝西路一段50號1樓',
    storeOutside: false,
  });
  return payBySinopacAtm(shop, user, order);
}
