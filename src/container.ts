import type { Config } from './config';
import { createDb, Db } from './data/db';
import { createRedis, Redis } from './data/redis';
import { ecpayPauseKey, RedisCallGate } from './data/ecpay-pause';
import { UnitOfWork } from './data/unit-of-work';
import type { Notifier } from './domain/notices';
import { OrderEvents } from './domain/order-events';
import { Members } from './domain/members';
import { CatalogAdmin } from './domain/catalog-admin';
import { OwnerService } from './domain/owner';
import { ownerNoticesListener } from './domain/owner-notices';
import { PaymentReminders } from './domain/reminders';
import { StockAlerts } from './domain/stock-alerts';
import { OwnerAccess } from './domain/owner-access';
import { Shopping } from './domain/shopping';
import { DeliveryCheckout } from './domain/delivery';
import { Gateways, PaymentService } from './domain/payments';
import { buildGateways } from './gateways/build-gateways';
import { EcpayLogisticsClient, type LogisticsPort } from './gateways/ecpay-logistics';
import { Shipments } from './domain/shipments';
import { StoreChange } from './domain/store-change';
import { Queues } from './jobs/queues';
import { ShopBot } from './line/bot';
import { Delivery } from './line/delivery';
import { LineApi, LineClient } from './line/line-client';
import { LineNotifier } from './line/notifier';
import { createLogger, Logger } from './logger';
import { Metrics } from './metrics';

/** Everything a process needs, built once from the frozen config. */
export interface Container {
  config: Config;
  log: Logger;
  metrics: Metrics;
  db: Db;
  redis: Redis;
  queues: Queues;
  /** One transaction plus what runs after its commit (deliveries, delayed jobs). */
  uow: UnitOfWork;
  /** How the domain's notices reach people (LINE messages through the outbox). */
  notifier: Notifier;
  /** Listeners of order changes (points, owner notices) register here, before the first event. */
  orderEvents: OrderEvents;
  shopping: Shopping;
  /** Points, tiers, member codes, the store devices' journal (wallet payments and top-ups are in payments). */
  members: Members;
  line: LineApi;
  delivery: Delivery;
  payments: PaymentService;
  owner: OwnerService;
  /** Unpaid orders' payment reminders (jobs and sweeper). */
  reminders: PaymentReminders;
  /** Low-stock and sold-out crossings recorded by the database, told to the owners. */
  stockAlerts: StockAlerts;
  /** Back-office logins and sessions (owner list read on every request). */
  access: OwnerAccess;
  /** The owner's catalog use cases (products, categories, photos). */
  catalogAdmin: CatalogAdmin;
  bot: ShopBot;
  gateways: Gateways;
  /** ECPay logistics (store pickup); null when ECPAY_LOGISTICS_* are not set: checkout offers home delivery only. */
  logistics: LogisticsPort | null;
  /** Shipping orders: ECPay store-pickup shipments, their status notifications and reconciliation. */
  shipments: Shipments;
  /** Delivery details at checkout (method, recipient, store or address, fee). */
  deliveryCheckout: DeliveryCheckout;
  storeChange: StoreChange;
  close(): Promise<void>;
}

export interface ContainerOptions {
  log?: Logger;
  db?: Db;
  poolMax?: number;
  lineTimeoutMs?: number;
  gatewayTimeoutMs?: number;
  /** The clock of ECPay calls (tests move it to a given Taipei time of day). */
  ecpayNow?: () => Date;
}

export function createContainer(config: Config, opts: ContainerOptions = {}): Container {
  const log = opts.log ?? createLogger(config.logLevel);
  const db = opts.db ?? createDb(config.databaseUrl, { poolMax: opts.poolMax ?? 10 });
  const redis = createRedis(config.redisUrl, 'producer');
  const queues = new Queues(redis, config.queuePrefix, log);
  const line = new LineClient({
    channelAccessToken: config.line.channelAccessToken,
    apiBaseUrl: config.line.apiBaseUrl,
    timeoutMs: opts.lineTimeoutMs,
    logger: log,
  });
  const metrics = new Metrics({ db, queues });
  const delivery = new Delivery(db, line, log, 60, metrics);
  const gateways = buildGateways(config, log, opts.gatewayTimeoutMs, {
    ecpayGate: new RedisCallGate(redis, ecpayPauseKey(config.queuePrefix)),
    ecpayNow: opts.ecpayNow,
  });
  const uow = new UnitOfWork(db, queues);
  const notifier = new LineNotifier(config);
  const orderEvents = new OrderEvents();
  const reminders = new PaymentReminders({ uow, notifier, queues, gateways, leads: config.remindBeforeMinutes });
  const stockAlerts = new StockAlerts(uow, notifier);
  const shopping = new Shopping(orderEvents, queues, config.holdMinutes.default, reminders);
  const payments = new PaymentService({ db, config, gateways, queues, log, uow, notifier, events: orderEvents, reminders });
  const logistics: LogisticsPort | null = config.ecpayLogistics
    ? new EcpayLogisticsClient({
        config: config.ecpayLogistics,
        timeoutMs: opts.gatewayTimeoutMs,
        logger: log,
        now: opts.ecpayNow,
        gate: new RedisCallGate(redis, `${ecpayPauseKey(config.queuePrefix)}:logistics`),
      })
    : null;
  const shipments = new Shipments({
    db,
    uow,
    notifier,
    queues,
    log,
    logistics,
    notifyUrl: `${config.publicBaseUrl}/logistics/ecpay/notify`,
    publicBaseUrl: config.publicBaseUrl,
    reconcileAfterMinutes: config.logisticsReconcile.afterMinutes,
  });
  const owner = new OwnerService(notifier, payments.refunds, orderEvents, config.lowStockThreshold, shipments);
  const access = new OwnerAccess((userId) => config.ownerLineUserIds.includes(userId));
  const catalogAdmin = new CatalogAdmin(owner);
  const members = new Members(config.members, notifier, uow);
  orderEvents.listen(members.orderListener());
  // After the members' listener: the new-order notice reads the order back, with its tier discount and points.
  orderEvents.listen(ownerNoticesListener(notifier));
  const deliveryCheckout = new DeliveryCheckout({
    uow, notifier, shipping: config.shipping, logistics, publicBaseUrl: config.publicBaseUrl, paymentMethods: () => payments.availableMethods(),
  });
  const storeChange = new StoreChange({ db, logistics, shipments, publicBaseUrl: config.publicBaseUrl });
  const bot = new ShopBot({ db, config, log, line, queues, payments, owner, access, uow, shopping, delivery, members, deliveryCheckout });
  return {
    config, log, metrics, db, redis, queues, uow, notifier, orderEvents, shopping, members, line, delivery, payments, owner, access, catalogAdmin,
    reminders, stockAlerts, bot, gateways, logistics, shipments, deliveryCheckout, storeChange,
    async close() {
      await queues.close().catch(() => undefined);
      redis.disconnect();
      if (!opts.db) await db.destroy();
    },
  };
}
