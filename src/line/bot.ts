import type { messagingApi, webhook } from '@line/bot-sdk';
import type { Config } from '../config';
import type { Db, Trx } from '../data/db';
import { AfterCommit, UnitOfWork } from '../data/unit-of-work';
import { CATALOG_PAGE_SIZE, listCatalogPage } from '../domain/catalog';
import { changeCart, getCart } from '../domain/cart';
import { Order, orderItems, recentOrders } from '../domain/orders';
import type { Shopping } from '../domain/shopping';
import { deliveryLabel, latestShipment, type DeliveryCheckout } from '../domain/delivery';
import { OwnerService } from '../domain/owner';
import type { Members } from '../domain/members';
import { PaymentChoice, PaymentService, PreparedPayment, PreparedTopupPayment, TopupChoice, WALLET, WalletPayResult } from '../domain/payments';
import type { OwnerAccess } from '../domain/owner-access';
import type { Queues } from '../jobs/queues';
import type { Logger } from '../logger';
import { DELIVERY_TEXT, M, STATUS_LABEL, T } from '../texts';
import { Command, OWNER_COMMANDS, parseCommand, parsePostback, Postback } from './command-parser';
import { addClaimedReply, ClaimedMessage, Delivery, eventReplyKey } from './delivery';
import { handleOwnerCommand } from './owner-commands';
import type { LineApi } from './line-client';
import * as V from './views';

type Message = messagingApi.Message;

/** Reply tokens are good for about a minute after LINE sent the event; keep a margin. */
const REPLY_WINDOW_MS = 50_000;
/** A redelivered event's reply token dies 20 minutes after the event; keep a minute's margin. */
const REDELIVERED_REPLY_LIMIT_MS = 19 * 60_000;

export interface BotDeps {
  db: Db;
  config: Config;
  log: Logger;
  line: LineApi;
  queues: Queues;
  payments: PaymentService;
  owner: OwnerService;
  /** Login links to the back office (`後台`). */
  access: OwnerAccess;
  uow: UnitOfWork;
  shopping: Shopping;
  delivery: Delivery;
  members: Members;
  /** Delivery details at checkout (the chat's side: methods, links, one-tap reuse). */
  deliveryCheckout: DeliveryCheckout;
}

/** What an event needed done before its transaction (calls to LINE or a bank). */
type Prepared = PreparedPayment | { topup: PreparedTopupPayment } | { displayName: string | null } | null;

interface Ctx {
  trx: Trx;
  userId: string;
  after: AfterCommit;
  event: webhook.Event;
}

export class ShopBot {
  constructor(private readonly d: BotDeps) {}

  private isOwner(userId: string): boolean {
    return this.d.config.ownerLineUserIds.includes(userId);
  }

  /**
   * Processes one stored webhook event exactly once: its effects, its reply (as an outbox row)
   * and the inbox row's processed mark commit in one transaction. Work that must call a bank
   * happens before that transaction and is idempotent on the event id.
   */
  async processInboxEvent(inboxId: number): Promise<'processed' | 'already' | 'missing'> {
    const row = await this.d.db('line_events').where({ id: inboxId }).first();
    if (!row) return 'missing';
    if (row.processed_at) return 'already';
    const event = row.payload as webhook.Event;
    const receivedAt: Date = row.received_at;
    const userId = event.source?.type === 'user' ? event.source.userId ?? null : null;

    const prepared = await this.prepare(event, userId);

    const done = await this.d.uow.run(async (trx, after) => {
      // Marked first, and only if nobody did (the UPDATE locks the row; a second worker waits, then
      // finds it processed): all-or-nothing with the effects, since it is one transaction. The
      // fewer statements between a checkout and COMMIT, the sooner a lost stock race is retried.
      const marked = await trx('line_events')
        .where({ id: inboxId })
        .whereNull('processed_at')
        .update({ processed_at: trx.fn.now(), attempts: trx.raw('attempts + 1'), last_error: null });
      if (marked === 0) return false;
      const replies = await this.apply(trx, event, userId, after, prepared);
      const replyTo = userId ?? groupOrRoomId(event);
      if (replies.length && replyTo) {
        const replyToken = 'replyToken' in event ? (event.replyToken ?? null) : null;
        const claimed = await addClaimedReply(
          trx,
          {
            recipient: replyTo,
            messages: replies.slice(0, 5),
            kind: 'reply',
            dedupeKey: eventReplyKey(row.webhook_event_id),
            replyToken,
            replyDeadline: replyToken ? replyDeadline(event, receivedAt) : null,
            replyTokenAt: replyToken ? receivedAt : null,
          },
          this.d.delivery.claimDurationSeconds,
        );
        // The reply goes out from here, right after COMMIT, not through a delivery job: one queue hop
        // less while the shopper waits. It is written already claimed by this run (no claiming round
        // trip). If that try fails, the delivery queue takes over; if this run dies, the re-run job
        // takes the claim over (worker.ts resumeReply) or the outbox sweeper finds it when it runs out.
        if (claimed !== null) after.tasks.push(() => this.deliverNow(claimed));
      }
      return true;
    });
    return done ? 'processed' : 'already';
  }

  private async deliverNow(claimed: ClaimedMessage): Promise<void> {
    try {
      await this.d.delivery.deliverClaimed(claimed);
    } catch (err) {
      this.d.log.debug({ outboxId: claimed.id, err: err instanceof Error ? err.message : String(err) }, 'reply not delivered at once; queued');
      await this.d.queues.enqueueDeliveries([claimed.id]);
    }
  }

  /** Pre-transaction work that calls the outside world (profiles, bank order creation). */
  private async prepare(event: webhook.Event, userId: string | null): Promise<Prepared> {
    if (event.mode === 'standby' || !userId) return null;
    if (event.type === 'follow') {
      const profile = await this.d.line.getProfile(userId);
      return { displayName: profile?.displayName ?? null };
    }
    if (event.type === 'postback') {
      const pb = parsePostback(event.postback.data);
      // The wallet needs no bank: it pays inside the event's transaction.
      if (pb.action === 'pay' && pb.method !== WALLET) {
        await this.d.line.showLoading(userId, 10);
        return this.d.payments.preparePayment({ userId, orderNo: pb.orderNo, method: pb.method, requestKey: event.webhookEventId });
      }
      if (pb.action === 'tpay') {
        await this.d.line.showLoading(userId, 10);
        return { topup: await this.d.payments.topups.prepare({ userId, topupId: pb.topupId, method: pb.method, requestKey: event.webhookEventId }) };
      }
    }
    return null;
  }

  private async apply(
    trx: Trx,
    event: webhook.Event,
    userId: string | null,
    after: AfterCommit,
    prepared: Prepared,
  ): Promise<Message[]> {
    if (event.mode === 'standby') return []; // another channel owns the chat: send nothing
    const source = event.source;
    if (source && source.type !== 'user') {
      // Shopping is 1:1 only (orders and payments are personal); groups get one polite note.
      if (event.type === 'join' || (event.type === 'message' && 'replyToken' in event)) return [V.text(T.groupOnly)];
      return [];
    }
    if (!userId) return [];
    await this.touchUser(trx, userId, event);
    const ctx: Ctx = { trx, userId, after, event };

    switch (event.type) {
      case 'follow': {
        const name = prepared && 'displayName' in prepared ? prepared.displayName : null;
        if (name) await trx('line_users').where({ user_id: userId }).update({ display_name: name });
        return [V.welcomeMessage(name)];
      }
      case 'unfollow':
        return [];
      case 'message':
        if (event.message.type !== 'text') return [V.text(T.nonText)];
        return this.onCommand(ctx, parseCommand(event.message.text));
      case 'postback':
        return this.onPostback(ctx, parsePostback(event.postback.data), prepared);
      default:
        this.d.log.debug({ type: event.type }, 'event type ignored');
        return [];
    }
  }

  private async touchUser(trx: Trx, userId: string, event: webhook.Event): Promise<void> {
    const following = event.type !== 'unfollow';
    const patch: Record<string, unknown> = { updated_at: trx.fn.now() };
    if (event.type === 'follow') Object.assign(patch, { following: true, followed_at: trx.fn.now() });
    if (event.type === 'unfollow') Object.assign(patch, { following: false, unfollowed_at: trx.fn.now() });
    await trx('line_users')
      .insert({ user_id: userId, following, ...(event.type === 'follow' ? { followed_at: trx.fn.now() } : {}), ...(event.type === 'unfollow' ? { unfollowed_at: trx.fn.now() } : {}) })
      .onConflict('user_id')
      .merge(patch);
  }

  // -------------------------------------------------------------------------------------------

  private async onCommand(ctx: Ctx, cmd: Command): Promise<Message[]> {
    if (OWNER_COMMANDS.has(cmd.kind)) {
      if (!this.isOwner(ctx.userId)) return [V.text(cmd.kind === 'owner-admin' ? T.adminRefused : T.ownerOnly)];
      return handleOwnerCommand(this.d.owner, ctx.trx, ctx.after, ctx.userId, cmd, { access: this.d.access, publicBaseUrl: this.d.config.publicBaseUrl }, this.d.members);
    }
    switch (cmd.kind) {
      case 'menu':
        return this.menu(ctx, 1);
      case 'cart':
        return [V.cartMessage(await getCart(ctx.trx, ctx.userId))];
      case 'cart-usage':
        return [V.text(T.cartUsage)];
      case 'qty-invalid':
        return [V.text(T.qtyInvalid)];
      case 'cart-set':
        return this.cartChange(ctx, cmd.ref, cmd.change);
      case 'checkout':
        return this.checkout(ctx, null);
      case 'orders':
        return [V.ordersListMessage(await recentOrders(ctx.trx, ctx.userId))];
      case 'order':
        return this.orderDetail(ctx, cmd.orderNo);
      case 'cancel':
        return this.cancel(ctx, cmd.orderNo);
      case 'help':
        return [V.helpMessage(this.isOwner(ctx.userId))];
      case 'points':
        return this.points(ctx);
      case 'wallet':
        return this.wallet(ctx);
      case 'member':
        return this.memberCard(ctx);
      default:
        return [V.unknownMessage()];
    }
  }

  private async onPostback(ctx: Ctx, pb: Postback, prepared: Prepared): Promise<Message[]> {
    switch (pb.action) {
      case 'menu':
        return this.menu(ctx, pb.page);
      case 'add':
      case 'inc':
        return this.cartChange(ctx, pb.productId, { op: 'add', delta: 1 }, pb.action === 'inc');
      case 'dec':
        return this.cartChange(ctx, pb.productId, { op: 'add', delta: -1 }, true);
      case 'cart':
        return [V.cartMessage(await getCart(ctx.trx, ctx.userId))];
      case 'checkout':
        return this.checkout(ctx, pb.cartVersion);
      case 'order':
        return this.orderDetail(ctx, pb.orderNo);
      case 'cancel':
        return this.cancel(ctx, pb.orderNo);
      case 'pay': {
        if (pb.method === WALLET) return this.payWithWallet(ctx, pb.orderNo);
        if (!prepared || !('kind' in prepared)) return [V.unknownMessage()];
        const choice = await this.d.payments.completePayment(ctx.trx, prepared, ctx.after);
        if (choice.kind === 'delivery-needed') return this.deliveryFirst(ctx, choice.order);
        return paymentChoiceMessages(choice);
      }
      case 'dlv':
        return this.deliveryTap(ctx, pb.orderNo, pb.method);
      case 'redeem':
        return this.redeem(ctx, pb.orderNo);
      case 'topup':
        return this.topup(ctx, pb.amount);
      case 'tpay':
        if (!prepared || !('topup' in prepared)) return [V.unknownMessage()];
        return topupChoiceMessages(await this.d.payments.topups.complete(ctx.trx, prepared.topup, ctx.after));
      case 'wallet':
        return this.wallet(ctx);
      case 'points':
        return this.points(ctx);
      case 'member':
        return this.memberCard(ctx);
      default:
        return [V.unknownMessage()];
    }
  }

  private async menu(ctx: Ctx, page: number): Promise<Message[]> {
    const { products, total, pages } = await listCatalogPage(ctx.trx, page);
    return [V.catalogMessage(products, Math.min(page, pages), pages, total, CATALOG_PAGE_SIZE, this.d.config.publicBaseUrl)];
  }

  private async cartChange(ctx: Ctx, ref: string | number, change: Parameters<typeof changeCart>[3], showCart = false): Promise<Message[]> {
    const r = await changeCart(ctx.trx, ctx.userId, ref, change);
    switch (r.kind) {
      case 'unknown-product':
        return [V.text(T.productUnknown(r.ref))];
      case 'inactive':
        return [V.text(T.productInactive(r.product.name))];
      case 'not-enough':
        return [V.text(T.notEnoughStock(r.product.name, r.available))];
      case 'qty-invalid':
        return [V.text(T.qtyInvalid)];
      case 'too-many-lines':
        return [V.text(T.cartTooManyLines)];
      case 'updated': {
        const cart = await getCart(ctx.trx, ctx.userId);
        return showCart ? [V.cartMessage(cart)] : [V.text(T.cartUpdated(r.product.name, r.qty)), V.cartMessage(cart)];
      }
    }
  }

  private async checkout(ctx: Ctx, cartVersion: number | null): Promise<Message[]> {
    const methods = this.d.payments.availableMethods();
    const r = await this.d.shopping.placeOrder(ctx.trx, ctx.after, { userId: ctx.userId, cartVersion });
    switch (r.kind) {
        case 'created':
          return [V.orderCreatedMessage(r.order, r.items, methods, await this.redeemOffer(ctx, r.order), await this.deliveryChoices(ctx, r.order))];
        case 'existing':
          if (r.order.status === 'pending_payment') {
            return [V.orderCreatedMessage(r.order, r.items, methods, await this.redeemOffer(ctx, r.order), await this.deliveryChoices(ctx, r.order))];
          }
          return [V.orderDetailMessage(r.order, r.items, methods)];
        case 'stale-cart':
          return [V.text(T.checkoutCartChanged), V.cartMessage(await getCart(ctx.trx, ctx.userId))];
        case 'empty':
          if (r.pending) return [V.orderDetailMessage(r.pending, await orderItems(ctx.trx, r.pending.id), methods)];
          return [V.text(T.cartEmpty)];
        case 'inactive':
          return [V.text(r.names.map((n) => T.productInactive(n)).join('\n'))];
        case 'insufficient': {
          const lines = r.cart.lines.filter((l) => l.qty > l.available).map((l) => T.notEnoughStock(l.name, Math.max(0, l.available)));
          return [V.text(T.checkoutStockChanged(lines.length ? lines : [T.checkoutBusy])), V.cartMessage(r.cart)];
        }
    }
  }

  private async orderDetail(ctx: Ctx, orderNo: string): Promise<Message[]> {
    const order = await ctx.trx('orders').where({ order_no: orderNo, line_user_id: ctx.userId }).first<Order>();
    if (!order) return [V.text(T.orderUnknown(orderNo))];
    const shipment = await latestShipment(ctx.trx, order.id);
    return [V.orderDetailMessage(order, await orderItems(ctx.trx, order.id), this.d.payments.availableMethods(), await this.redeemOffer(ctx, order), shipment)];
  }

  // ---- Delivery at checkout -------------------------------------------------------------------

  /** The delivery choices of an unpaid order still without details (null once they are complete). */
  private async deliveryChoices(ctx: Ctx, order: Order) {
    if (order.status !== 'pending_payment' || order.delivery_ready_at) return null;
    return this.d.deliveryCheckout.choices(ctx.trx, order);
  }

  /** A payment method tapped before the delivery details were complete. */
  private async deliveryFirst(ctx: Ctx, order: Order): Promise<Message[]> {
    return [V.text(DELIVERY_TEXT.deliveryFirst(order.order_no)), V.deliveryChoiceMessage(await this.d.deliveryCheckout.choices(ctx.trx, order))];
  }

  /** `dlv` taps: the choices, one method's page link, or the last details at once. */
  private async deliveryTap(ctx: Ctx, orderNo: string, method: string | null): Promise<Message[]> {
    const dc = this.d.deliveryCheckout;
    const closedText = (reason: string, order: Order) =>
      reason === 'payment-started' ? DELIVERY_TEXT.paymentStarted(order.order_no) : DELIVERY_TEXT.closed(order.order_no, STATUS_LABEL[order.status] ?? order.status);
    if (method === null) {
      const order = await ctx.trx('orders').where({ order_no: orderNo, line_user_id: ctx.userId }).first<Order>();
      if (!order) return [V.text(T.orderUnknown(orderNo))];
      if (order.status !== 'pending_payment' || order.hold_expires_at.getTime() <= Date.now()) return [V.text(closedText('order-closed', order))];
      return [V.deliveryChoiceMessage(await dc.choices(ctx.trx, order))];
    }
    if (method === 'last') {
      const r = await dc.useLast(ctx.trx, ctx.after, { userId: ctx.userId, orderNo });
      switch (r.kind) {
        case 'not-found':
          return [V.text(T.orderUnknown(orderNo))];
        case 'closed':
          return [V.text(closedText(r.reason, r.order))];
        case 'no-profile': {
          const order = (await ctx.trx('orders').where({ order_no: orderNo }).first<Order>())!;
          return [V.text(DELIVERY_TEXT.noProfile), V.deliveryChoiceMessage(await dc.choices(ctx.trx, order))];
        }
        case 'ready':
          return [V.deliveryReadyMessage(r.order, r.items, r.delivery, r.methods)];
      }
    }
    const r = await dc.openLink(ctx.trx, { userId: ctx.userId, orderNo, key: method });
    switch (r.kind) {
      case 'unavailable':
        return [V.text(DELIVERY_TEXT.methodUnavailable)];
      case 'not-found':
        return [V.text(T.orderUnknown(orderNo))];
      case 'closed':
        return [V.text(closedText(r.reason, r.order))];
      case 'link':
        return [V.deliveryLinkMessage(r.order.order_no, deliveryLabel(r.option), r.url, r.expiresAt)];
    }
  }

  // ---- Members --------------------------------------------------------------------------------

  /** The 「用 N 點折抵」 button for an unpaid order the shopper's points can take from, if any. */
  private async redeemOffer(ctx: Ctx, order: Order): Promise<messagingApi.FlexComponent[]> {
    const offer = await this.d.members.points.offer(ctx.trx, order);
    return offer ? [V.redeemButton(order.order_no, offer)] : [];
  }

  private async redeem(ctx: Ctx, orderNo: string): Promise<Message[]> {
    const r = await this.d.members.points.redeem(ctx.trx, { userId: ctx.userId, orderNo });
    const methods = this.d.payments.availableMethods();
    switch (r.kind) {
      case 'not-found':
        return [V.text(T.orderUnknown(r.orderNo))];
      case 'not-pending':
        return [V.text(M.redeemNotPending(r.order.order_no, STATUS_LABEL[r.order.status] ?? r.order.status))];
      case 'already':
        return [V.text(M.redeemAlready), V.orderDetailMessage(r.order, r.items, methods)];
      case 'payment-started':
        return [V.text(M.redeemAfterPayment)];
      case 'no-points':
        return [V.text(M.redeemNoPoints(r.balance))];
      case 'redeemed':
        return [V.text(M.redeemed(r.points, r.amount, r.balance)), V.orderCreatedMessage(r.order, r.items, methods)];
    }
  }

  private async payWithWallet(ctx: Ctx, orderNo: string): Promise<Message[]> {
    const r = await this.d.payments.wallet.payOrder(ctx.trx, ctx.after, { userId: ctx.userId, orderNo, requestKey: ctx.event.webhookEventId });
    if (r.kind === 'delivery-needed') return this.deliveryFirst(ctx, r.order);
    return walletPayMessages(r);
  }

  private async topup(ctx: Ctx, amount: number): Promise<Message[]> {
    const r = await this.d.payments.topups.request(ctx.trx, { userId: ctx.userId, amount });
    if (r.kind === 'invalid-amount') return [V.text(M.topupInvalidAmount(r.amounts))];
    if (r.kind === 'unavailable') return [V.text(M.topupUnavailable)];
    return [V.topupMessage(r.topup, r.methods)];
  }

  private async wallet(ctx: Ctx): Promise<Message[]> {
    return [V.walletMessage(await this.d.members.walletSummary(ctx.trx, ctx.userId))];
  }

  private async points(ctx: Ctx): Promise<Message[]> {
    const m = this.d.members;
    const s = await m.points.summary(ctx.trx, ctx.userId);
    const hint = M.pointsHint(decimal(m.cfg.pointsPerTwd, 100), decimal(m.cfg.twdPerPoint, 1));
    return [V.pointsMessage(s, m.cfg.tiers.indexOf(s.standing.tier), hint)];
  }

  /** The member card with a fresh 15-minute code; the QR picture's URL only over https (LINE fetches only those). */
  private async memberCard(ctx: Ctx): Promise<Message[]> {
    const card = await this.d.members.memberCard(ctx.trx, ctx.userId);
    const base = this.d.config.publicBaseUrl;
    const qrUrl = base.startsWith('https://') ? `${base}/member/qr/${card.code.qrRef}.png` : null;
    return [V.memberCardMessage(card, this.d.members.cfg.tiers.indexOf(card.standing.tier), qrUrl)];
  }

  private async cancel(ctx: Ctx, orderNo: string): Promise<Message[]> {
    const r = await this.d.shopping.cancel(ctx.trx, ctx.after, { userId: ctx.userId, orderNo });
    if (r.kind === 'not-found') return [V.text(T.orderUnknown(orderNo))];
    if (r.kind === 'not-allowed') return [V.text(T.cancelNotAllowed(orderNo, STATUS_LABEL[r.order.status] ?? r.order.status))];
    return [V.text(T.cancelDone(orderNo))];
  }
}

/** What choosing a payment method came to, as the shopper's reply. */
function paymentChoiceMessages(c: Exclude<PaymentChoice, { kind: 'delivery-needed' }>): Message[] {
  switch (c.kind) {
    case 'unavailable':
      return [V.text(T.methodUnavailable)];
    case 'not-found':
      return [V.text(T.orderUnknown(c.orderNo))];
    case 'stale':
      return [V.text(T.stalePayTap(c.orderNo, STATUS_LABEL[c.status] ?? c.status))];
    case 'instructions':
      return [V.paymentInstructionsMessage(c.instructions)];
    case 'order':
      return [V.orderDetailMessage(c.order, c.items, c.methods)];
    case 'create-failed':
      return [V.text(T.paymentCreateFailed), V.orderDetailMessage(c.order, c.items, c.methods)];
  }
}

/** What paying from the wallet came to, as the shopper's reply (the receipt itself is pushed). */
function walletPayMessages(r: Exclude<WalletPayResult, { kind: 'delivery-needed' }>): Message[] {
  switch (r.kind) {
    case 'not-found':
      return [V.text(T.orderUnknown(r.orderNo))];
    case 'stale':
      return [V.text(T.stalePayTap(r.orderNo, STATUS_LABEL[r.status] ?? r.status))];
    case 'insufficient':
      return [V.text(M.walletInsufficient(r.balance, r.order.total)), V.orderDetailMessage(r.order, r.items, r.methods)];
    case 'paid':
      return [V.text(M.walletPaid(r.order.order_no, r.order.paid_amount, r.balance))];
  }
}

/** What choosing a method for a top-up came to, as the shopper's reply. */
function topupChoiceMessages(c: TopupChoice): Message[] {
  switch (c.kind) {
    case 'unavailable':
      return [V.text(T.methodUnavailable)];
    case 'not-found':
      return [V.text(M.topupUnknown)];
    case 'stale':
      return [V.text(c.status === 'paid' ? M.topupPaid : M.topupExpired)];
    case 'instructions':
      return [V.topupInstructionsMessage(c.instructions)];
    case 'topup':
      return [V.topupMessage(c.topup, c.methods)];
    case 'create-failed':
      return [V.text(T.paymentCreateFailed), V.topupMessage(c.topup, c.methods)];
  }
}

/** A rate as a short decimal (e.g. 1 point per NT$100 from 0.01 × 100). */
function decimal(r: { num: number; den: number }, times: number): string {
  return String(Math.round((times * r.num * 1e6) / r.den) / 1e6);
}

/**
 * Until when to try the event's reply token: a minute from when it reached us (with a margin),
 * and for a redelivered event never past 20 minutes after the event itself (LINE's rule).
 */
function replyDeadline(event: webhook.Event, receivedAt: Date): Date {
  const fromReceipt = receivedAt.getTime() + REPLY_WINDOW_MS;
  const fromEvent = typeof event.timestamp === 'number' ? event.timestamp + REDELIVERED_REPLY_LIMIT_MS : Infinity;
  return new Date(Math.min(fromReceipt, fromEvent));
}

function groupOrRoomId(event: webhook.Event): string | null {
  const s = event.source;
  if (s?.type === 'group') return s.groupId;
  if (s?.type === 'room') return s.roomId;
  return null;
}
