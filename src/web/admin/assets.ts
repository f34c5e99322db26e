import crypto from 'node:crypto';

/**
 * The back office's one stylesheet and one small script, served from our origin (the pages' CSP
 * allows no inline style or script). Their URLs carry a content hash, so they are cached for a
 * year and a new version is fetched the moment it changes. Pages work without the script; it only
 * stops a second tap on a submit button and asks before irreversible actions.
 */

const CSS = `
:root{--green:#06C755;--ink:#1f2328;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f8;--red:#d92d20;--amber:#b54708;--blue:#1d4ed8}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"PingFang TC","Noto Sans TC","Noto Sans CJK TC","Microsoft JhengHei",sans-serif;font-size:16px;line-height:1.5;color:var(--ink);background:var(--bg)}
a{color:var(--blue);text-decoration:none}a:hover{text-decoration:underline}
header.top{background:#fff;border-bottom:1px solid var(--line);position:sticky;top:0;z-index:2}
.bar{display:flex;align-items:center;gap:8px;max-width:1080px;margin:0 auto;padding:8px 12px}
.brand{font-weight:700;white-space:nowrap;color:var(--ink)}
nav.tabs{display:flex;gap:2px;overflow-x:auto;max-width:1080px;margin:0 auto;padding:0 8px;scrollbar-width:none}
nav.tabs a{padding:8px 12px;white-space:nowrap;color:var(--muted);border-bottom:3px solid transparent;font-size:15px}
nav.tabs a.on{color:var(--ink);border-bottom-color:var(--green);font-weight:600}
.bar form{margin-left:auto}
main{max-width:1080px;margin:0 auto;padding:12px}
h1{font-size:22px;margin:8px 0 12px}h2{font-size:17px;margin:0 0 8px}
.card{background:#fff;border:1px solid var(--line);border-radius:12px;padding:14px;margin-bottom:12px}
.grid{display:grid;gap:12px;grid-template-columns:repeat(auto-fit,minmax(300px,1fr))}
.grid>.card{margin-bottom:0}.grid{margin-bottom:12px}
.kpis{display:grid;grid-template-columns:repeat(3,1fr);gap:8px;margin-bottom:8px}
.kpi{background:var(--bg);border-radius:8px;padding:8px}.kpi b{display:block;font-size:20px}.kpi span{font-size:13px;color:var(--muted)}
.muted{color:var(--muted)}.small{font-size:13px}.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.flash{border-radius:10px;padding:10px 12px;margin-bottom:12px;border:1px solid}
.flash.ok{background:#ecfdf3;border-color:#abefc6;color:#067647}.flash.bad{background:#fef3f2;border-color:#fecdca;color:#b42318}
table{width:100%;border-collapse:collapse}th,td{padding:8px 6px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-size:13px;color:var(--muted);font-weight:600}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;white-space:nowrap;background:#eef2f6;color:#364152}
.badge.ok{background:#ecfdf3;color:#067647}.badge.warn{background:#fffaeb;color:var(--amber)}.badge.bad{background:#fef3f2;color:var(--red)}.badge.info{background:#eff8ff;color:#175cd3}
label{display:block;font-weight:600;margin:12px 0 4px}
.hint{display:block;font-weight:400;font-size:13px;color:var(--muted);margin-top:2px}
.err{display:block;font-weight:600;font-size:13px;color:var(--red);margin-top:4px}
input[type=text],input[type=search],input[type=number],input[type=date],select,textarea{width:100%;font:inherit;padding:10px;border:1px solid #cfd4dc;border-radius:8px;background:#fff;color:var(--ink)}
input[type=file]{width:100%;font-size:15px;padding:8px 0}
textarea{min-height:110px;resize:vertical}
input.bad,select.bad,textarea.bad{border-color:var(--red)}
.check{display:flex;align-items:center;gap:8px;font-weight:600;margin:14px 0 4px}.check input{width:22px;height:22px}
button,.btn{display:inline-block;font:inherit;font-weight:600;padding:10px 16px;border-radius:8px;border:1px solid #cfd4dc;background:#fff;color:var(--ink);cursor:pointer;text-align:center;white-space:nowrap}
button.primary,.btn.primary{background:var(--green);border-color:var(--green);color:#fff}
button.danger{background:#fff;border-color:#fda29b;color:var(--red)}
button.small,.btn.small{padding:6px 10px;font-size:14px}
button[disabled]{opacity:.6;cursor:default}
.actions{display:flex;flex-wrap:wrap;gap:8px;margin-top:14px}
.filters{display:grid;gap:8px;grid-template-columns:1fr 1fr;align-items:end}
.filters>div{min-width:0}.filters .wide{grid-column:1/-1}
input[type=date]{min-width:0;-webkit-appearance:none;appearance:none;min-height:44px}.filters label{margin:0 0 4px;font-size:13px}
.toolbar{display:flex;flex-wrap:wrap;gap:8px;align-items:center;justify-content:space-between;margin-bottom:12px}
.plist{list-style:none;margin:0;padding:0}
.plist li{display:flex;gap:12px;align-items:center;padding:10px 0;border-bottom:1px solid var(--line)}
.plist li:last-child{border-bottom:0}
.thumb{width:64px;height:64px;flex:0 0 64px;border-radius:8px;object-fit:cover;background:#eef0ef}
.pmain{flex:1;min-width:0}.pmain a{font-weight:600;color:var(--ink)}
.pmeta{font-size:13px;color:var(--muted);overflow-wrap:anywhere}
.pprice{font-weight:700;text-align:right;white-space:nowrap}
.olist{list-style:none;margin:0;padding:0}
.olist li{padding:10px 0;border-bottom:1px solid var(--line)}.olist li:last-child{border-bottom:0}
.orow{display:flex;justify-content:space-between;gap:8px;align-items:baseline}
.orow a{font-weight:600;font-variant-numeric:tabular-nums}
.photo{display:block;max-width:100%;max-height:260px;width:auto;border-radius:10px;border:1px solid var(--line);margin-bottom:6px}
.phead{display:flex;gap:12px;align-items:center;padding-bottom:12px;margin-bottom:4px;border-bottom:1px solid var(--line)}
.two{display:grid;grid-template-columns:1fr 1.4fr;gap:10px}.two label{margin-top:8px}
.ua{font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
code{font-size:13px;overflow-wrap:anywhere}
progress{width:100%;height:10px;accent-color:var(--green)}
.kv.small{margin-top:6px;font-size:13px}
.kv{display:grid;grid-template-columns:auto 1fr;gap:4px 12px;margin:0}.kv dt{color:var(--muted)}.kv dd{margin:0;overflow-wrap:anywhere}
.lines td:first-child{width:100%}
.total td{font-weight:700;border-bottom:0}
.timeline{list-style:none;padding:0;margin:0}.timeline li{padding:6px 0 6px 14px;border-left:2px solid var(--line);position:relative}
.timeline li::before{content:"";position:absolute;left:-6px;top:12px;width:10px;height:10px;border-radius:50%;background:var(--green)}
.inline{display:flex;gap:8px;align-items:flex-end;flex-wrap:wrap}.inline>div{flex:1;min-width:140px}.inline label{margin-top:0}
.catrow{display:flex;gap:8px;align-items:center;padding:8px 0;border-bottom:1px solid var(--line);flex-wrap:wrap}
.catrow form.rename{display:flex;gap:8px;flex:1;min-width:220px}.catrow form.rename input{flex:1}
.catrow .count{font-size:13px;color:var(--muted);min-width:64px}
pre.json{margin:0;font-size:12px;white-space:pre-wrap;word-break:break-all;max-width:260px}
.pager{display:flex;gap:8px;align-items:center;justify-content:space-between;margin-top:12px;font-size:14px}
.center{text-align:center;padding:32px 16px}.center .icon{font-size:44px}
@media (max-width:520px){main{padding:10px}.card{padding:12px}.kpi b{font-size:17px}.hide-sm{display:none}h1{font-size:20px}}
@media (min-width:720px){.filters{grid-template-columns:2fr 1fr 1fr 1fr auto}.filters .wide{grid-column:auto}}
`;

const JS = `
document.addEventListener('submit', function (e) {
  var f = e.target;
  var b = e.submitter || f.querySelector('button[type=submit],button:not([type])');
  var ask = (b && b.getAttribute('data-confirm')) || f.getAttribute('data-confirm');
  if (ask && !window.confirm(ask)) { e.preventDefault(); return; }
  if (f.getAttribute('method') && f.getAttribute('method').toLowerCase() === 'post') {
    setTimeout(function () { f.querySelectorAll('button').forEach(function (x) { x.disabled = true; }); }, 0);
  }
});
`;

const hash = (s: string) => crypto.createHash('sha256').update(s).digest('hex').slice(0, 12);

export const ASSETS = {
  css: { path: `/admin/assets/admin.${hash(CSS)}.css`, body: CSS, type: 'text/css; charset=utf-8' },
  js: { path: `/admin/assets/admin.${hash(JS)}.js`, body: JS, type: 'text/javascript; charset=utf-8' },
} as const;
