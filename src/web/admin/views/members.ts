import type { LedgerEntry } from '../../../domain/members/ledger';
import type { MemberRow } from '../../../domain/members';
import { ADMIN_MEMBERS as AM, LEDGER_KIND, M, twd } from '../../../texts';
import { html, Html } from '../html';
import { field, formGuard, money, page, PageContext, when_ } from '../layout';

export interface ChargeForm {
  code: string;
  amount: string;
  errors?: { code?: string | null; amount?: string | null };
}

const name = (userId: string, displayName: string | null) => displayName ?? `${userId.slice(0, 9)}…`;

/** The 收款 form: a member's one-time code and the amount before the tier discount. */
function chargeForm(ctx: PageContext, f: ChargeForm): Html {
  return html`<form class="card" method="post" action="/admin/charge" id="charge-form">${formGuard(ctx)}<h2>${AM.chargeTitle}</h2>
<p class="small muted">${AM.chargeHint}</p>
${field({ label: AM.code, name: 'code', value: f.code, inputmode: 'numeric', maxlength: 40, required: true, error: f.errors?.code })}
${field({ label: AM.amount, name: 'amount', value: f.amount, inputmode: 'numeric', maxlength: 7, required: true, error: f.errors?.amount })}
<div class="actions"><button class="primary" type="submit">${AM.charge}</button></div></form>`;
}

export function membersPage(ctx: PageContext, members: MemberRow[], form: ChargeForm = { code: '', amount: '' }): Html {
  const rows = members.map(
    (m) => html`<li><div class="orow"><a href="/admin/members/${m.line_user_id}">${name(m.line_user_id, m.display_name)}</a><span class="num">${money(m.wallet)}</span></div>
<div class="orow small"><span class="muted">${AM.lastActive} ${when_(m.updated_at)}</span><span>${M.points(m.points)}</span></div></li>`,
  );
  return page(
    ctx,
    'members',
    AM.title,
    html`${chargeForm(ctx, form)}
<section class="card"><h2>${AM.listTitle}</h2>${rows.length ? html`<ul class="olist">${rows}</ul>` : html`<p class="muted">${AM.empty}</p>`}</section>`,
  );
}

function ledgerTable(title: string, entries: LedgerEntry[], money_: boolean): Html {
  const fmt = (n: number) => (money_ ? twd(n) : n.toLocaleString('en-US'));
  const rows = entries.map((e) => {
    const ref = typeof e.details?.orderNo === 'string' ? e.details.orderNo : e.source;
    return html`<tr><td>${when_(e.created_at)}<div class="small muted">${LEDGER_KIND[e.kind] ?? e.kind} ・ <code>${ref}</code>${
      e.shortfall > 0 ? html` ・ <span class="badge bad">${AM.shortfall(e.shortfall)}</span>` : ''
    }</div></td><td class="num">${M.entryValue(e.amount, money_)}</td><td class="num">${fmt(e.balance_after)}</td></tr>`;
  });
  return html`<section class="card"><h2>${title}</h2>${
    rows.length
      ? html`<table><thead><tr><th>${AM.when}</th><th class="num">${AM.change}</th><th class="num">${AM.balanceAfter}</th></tr></thead><tbody>${rows}</tbody></table>`
      : html`<p class="muted small">${AM.noEntries}</p>`
  }</section>`;
}

export function memberPage(
  ctx: PageContext,
  m: { userId: string; displayName: string | null; points: number; wallet: number; tier: string; earned: number },
  points: LedgerEntry[],
  wallet: LedgerEntry[],
): Html {
  return page(
    ctx,
    'members',
    AM.detailTitle(name(m.userId, m.displayName)),
    html`<section class="card"><dl class="kv small">
<dt>${AM.tier}</dt><dd>${m.tier} ・ ${M.earnedLastYear(m.earned)}</dd>
<dt>${AM.points}</dt><dd>${M.points(m.points)}</dd>
<dt>${AM.wallet}</dt><dd>${money(m.wallet)}</dd>
</dl></section>
${ledgerTable(AM.walletLedger, wallet, true)}
${ledgerTable(AM.pointsLedger, points, false)}`,
  );
}
