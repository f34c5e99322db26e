import { escapeHtml } from '../html';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { LineApiDouble } from './line-api-double';

/**
 * A LINE chat in the browser, for the sandbox: type as a shopper or the owner, tap Flex buttons
 * or the rich menu under the chat. Typing becomes a signed webhook to the shop (exactly what LINE
 * would send); the bot's replies and pushes are read back from the LINE API double, and so is the
 * rich menu: the one linked to the user, else the default, as LINE shows it.
 */
export interface ChatSimulator {
  url: string;
  close(): Promise<void>;
}

interface Sent {
  at: number;
  from: 'user';
  to: string;
  text: string;
}

export async function startChatSimulator(opts: {
  line: LineApiDouble;
  webhookUrl: string;
  channelSecret: string;
  users: Array<{ id: string; name: string }>;
  port?: number;
  host?: string;
}): Promise<ChatSimulator> {
  const sent: Sent[] = [];
  const app = express();
  app.use(express.json({ limit: '64kb' }));

  const post = async (userId: string, event: Record<string, unknown>) => {
    const body = JSON.stringify({
      destination: 'U' + '0'.repeat(32),
      events: [
        {
          mode: 'active',
          timestamp: Date.now(),
          source: { type: 'user', userId },
          webhookEventId: `01SIM${Date.now().toString(36).toUpperCase()}${crypto.randomBytes(5).toString('hex').toUpperCase()}`,
          deliveryContext: { isRedelivery: false },
          replyToken: opts.line.issueReplyToken(userId),
          ...event,
        },
      ],
    });
    const signature = crypto.createHmac('sha256', opts.channelSecret).update(body).digest('base64');
    const res = await fetch(opts.webhookUrl, { method: 'POST', headers: { 'content-type': 'application/json', 'x-line-signature': signature }, body });
    return res.status;
  };

  app.get('/', (_req, res) => {
    res.type('text/html; charset=utf-8').send(PAGE(opts.users));
  });
  app.get('/api/messages', (req, res) => {
    const user = String(req.query.user ?? '');
    const bot = opts.line.deliveredTo(user).map((d) => ({ at: d.at.getTime(), from: 'bot', kind: d.kind, messages: d.messages }));
    const mine = sent.filter((s) => s.to === user).map((s) => ({ at: s.at, from: 'user', text: s.text }));
    res.json([...mine, ...bot].sort((a, b) => a.at - b.at));
  });
  app.get('/api/richmenu', (req, res) => {
    const shown = opts.line.richMenuFor(String(req.query.user ?? ''));
    if (!shown?.image) return res.json(null);
    const { richMenuId, size, selected, chatBarText, areas } = shown.menu;
    return res.json({ richMenuId, size, selected, chatBarText, areas });
  });
  app.get('/api/richmenu/:id/image', (req, res) => {
    const image = opts.line.richMenu(req.params.id)?.image;
    if (!image) return res.status(404).end();
    return res.type(image.contentType).set('cache-control', 'max-age=3600').send(image.bytes);
  });
  app.post('/api/say', async (req, res) => {
    const { user, text } = req.body as { user?: string; text?: string };
    if (!user || !opts.users.some((u) => u.id === user) || typeof text !== 'string' || !text.trim()) return res.status(400).json({ error: 'user and text required' });
    sent.push({ at: Date.now(), from: 'user', to: user, text });
    const status = await post(user, { type: 'message', message: { type: 'text', id: String(Date.now()), quoteToken: 'sim', text } });
    return res.json({ status });
  });
  app.post('/api/postback', async (req, res) => {
    const { user, data, label } = req.body as { user?: string; data?: string; label?: string };
    if (!user || !opts.users.some((u) => u.id === user) || typeof data !== 'string') return res.status(400).json({ error: 'user and data required' });
    if (label) sent.push({ at: Date.now(), from: 'user', to: user, text: label });
    const status = await post(user, { type: 'postback', postback: { data } });
    return res.json({ status });
  });
  app.post('/api/follow', async (req, res) => {
    const { user } = req.body as { user?: string };
    if (!user || !opts.users.some((u) => u.id === user)) return res.status(400).json({ error: 'user required' });
    return res.json({ status: await post(user, { type: 'follow', follow: { isUnblocked: false } }) });
  });

  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => r()));
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const esc = escapeHtml;

function PAGE(users: Array<{ id: string; name: string }>): string {
  const options = users.map((u) => `<option value="${esc(u.id)}">${esc(u.name)}</option>`).join('');
  return `<!doctype html>
<html lang="zh-Hant-TW"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>LINE 聊天模擬器</title>
<style>
body{margin:0;font-family:-apple-system,"PingFang TC","Noto Sans TC",sans-serif;background:#8cabd9;display:flex;flex-direction:column;height:100vh}
header{background:#273246;color:#fff;padding:10px 14px;display:flex;gap:10px;align-items:center}
header select{font-size:14px}#log{flex:1;overflow-y:auto;padding:12px}
.msg{max-width:78%;margin:6px 0;padding:8px 12px;border-radius:16px;white-space:pre-wrap;word-break:break-word;font-size:14px}
.user{margin-left:auto;background:#85e249}.bot{background:#fff}
.flex{background:#fff;border-radius:12px;padding:10px;margin:6px 0;max-width:78%}
.carousel{display:flex;gap:8px;overflow-x:auto;max-width:100%}.carousel .bubble{min-width:220px;max-width:240px}
.bubble{background:#fff;border:1px solid #ddd;border-radius:12px;padding:10px;font-size:13px}
.bubble img{width:100%;border-radius:8px}.bubble .t{margin:2px 0}
.bubble button,.bubble a.btn{display:block;width:100%;margin-top:6px;padding:7px;border:0;border-radius:6px;background:#06C755;color:#fff;font-size:13px;text-align:center;text-decoration:none;cursor:pointer}
.row{display:flex;gap:6px;align-items:center}.row>*{flex:1}
form{display:flex;gap:6px;padding:8px;background:#fff}form input{flex:1;font-size:16px;padding:8px}
#rmbar{display:block;width:100%;border:0;border-top:1px solid #ddd;background:#fff;padding:8px;font-size:14px;color:#333;cursor:pointer}
#rm{position:relative;background:#fff;line-height:0;max-width:560px;margin:0 auto;width:100%}#rm img{width:100%;display:block}
#rm button{position:absolute;background:transparent;border:0;padding:0;cursor:pointer}#rm button:active{background:rgba(0,0,0,.08)}
.quick,.qr{display:flex;gap:6px;padding:6px 8px;background:#f3f3f3;overflow-x:auto}.quick button,.qr button{white-space:nowrap}
.qr{background:#e8f7ee}.qr[hidden]{display:none}
</style></head>
<body>
<header><strong>LINE 聊天模擬器</strong><label>身分 <select id="user">${options}</select></label><button id="follow">加入好友</button></header>
<div id="log" aria-live="polite"></div>
<div class="qr" id="qr" aria-label="快速回覆" hidden></div>
<div class="quick">${['商品', '購物車', '結帳', '訂單', '說明', '今日訂單', '庫存', '後台'].map((q) => `<button data-q="${q}">${q}</button>`).join('')}</div>
<form id="f"><input id="text" autocomplete="off" placeholder="輸入訊息…"><button>送出</button></form>
<nav aria-label="圖文選單"><button id="rmbar" type="button" hidden></button><div id="rm" hidden></div></nav>
<script>
const $=s=>document.querySelector(s);const log=$('#log');let last='';
const user=()=>$('#user').value;
async function say(text){await fetch('/api/say',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({user:user(),text})});refresh();}
async function postback(data,label){await fetch('/api/postback',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({user:user(),data,label})});refresh();}
function el(tag,cls,text){const e=document.createElement(tag);if(cls)e.className=cls;if(text!=null)e.textContent=text;return e;}
function comp(c,parent){if(!c||typeof c!=='object')return;
 if(c.type==='text'){parent.appendChild(el('div','t',c.text));return;}
 if(c.type==='image'){const i=el('img');i.src=c.url;i.alt='';parent.appendChild(i);return;}
 if(c.type==='button'){const a=c.action||{};
   if(a.type==='uri'){const l=el('a','btn',a.label);l.href=a.uri;l.target='_blank';l.rel='noopener';parent.appendChild(l);}
   else{const b=el('button',null,a.label);b.onclick=()=>tapArea(a);parent.appendChild(b);}return;}
 if(c.type==='box'){const d=el('div',c.layout==='horizontal'||c.layout==='baseline'?'row':null);(c.contents||[]).forEach(x=>comp(x,d));parent.appendChild(d);}}
function bubble(b){const d=el('div','bubble');['header','hero','body','footer'].forEach(k=>comp(b[k],d));return d;}
function render(list){log.innerHTML='';for(const m of list){
 if(m.from==='user'){log.appendChild(el('div','msg user',m.text));continue;}
 for(const x of m.messages){
  if(x.type==='text'){log.appendChild(el('div','msg bot',x.text));}
  else if(x.type==='flex'){const w=el('div','flex');w.title=x.altText;const c=x.contents;
    if(c.type==='carousel'){const r=el('div','carousel');c.contents.forEach(b=>r.appendChild(bubble(b)));w.appendChild(r);}else w.appendChild(bubble(c));
    log.appendChild(w);}
  else log.appendChild(el('div','msg bot','['+x.type+']'));}}
 // Like LINE: the quick reply buttons of the last message, until anyone posts again.
 const qr=$('#qr');qr.innerHTML='';const end=list[list.length-1];const lastMsg=end&&end.from!=='user'?end.messages[end.messages.length-1]:null;
 const items=(lastMsg&&lastMsg.quickReply&&lastMsg.quickReply.items)||[];
 for(const it of items){const b=el('button',null,it.action.label);b.type='button';b.onclick=()=>tapArea(it.action);qr.appendChild(b);}
 qr.hidden=items.length===0;
 log.scrollTop=log.scrollHeight;}
async function refresh(){const r=await fetch('/api/messages?user='+encodeURIComponent(user()));const j=await r.text();if(j!==last){last=j;render(JSON.parse(j));}}
$('#f').onsubmit=e=>{e.preventDefault();const t=$('#text').value;if(t.trim()){$('#text').value='';say(t);}};
document.querySelectorAll('.quick button').forEach(b=>b.onclick=()=>say(b.dataset.q));
let menuKey='';let menuOpen=true;let newUser=true;
function tapArea(a){if(a.type==='message')say(a.text);else if(a.type==='postback')postback(a.data,a.displayText||null);
 else if(a.type==='uri')window.open(a.uri,'_blank','noopener');
 else if(a.type==='clipboard'&&navigator.clipboard)navigator.clipboard.writeText(a.clipboardText).catch(()=>{});}
async function loadMenu(){const r=await fetch('/api/richmenu?user='+encodeURIComponent(user()));const m=await r.json();
 const key=m?m.richMenuId:'none';if(key===menuKey)return;menuKey=key;
 const bar=$('#rmbar'),box=$('#rm');box.innerHTML='';if(!m){bar.hidden=true;box.hidden=true;return;}
 // Like LINE: a menu with selected=true opens when the chat does.
 if(newUser){menuOpen=m.selected;newUser=false;}
 const img=el('img');img.src='/api/richmenu/'+encodeURIComponent(m.richMenuId)+'/image';img.alt=m.chatBarText;box.appendChild(img);
 for(const a of m.areas){const b=el('button');const s=m.size,o=a.bounds;b.type='button';
  b.style.left=(100*o.x/s.width)+'%';b.style.top=(100*o.y/s.height)+'%';b.style.width=(100*o.width/s.width)+'%';b.style.height=(100*o.height/s.height)+'%';
  b.setAttribute('aria-label',a.action.label||a.action.text||a.action.displayText||'');b.onclick=()=>tapArea(a.action);box.appendChild(b);}
 bar.hidden=false;const show=()=>{box.hidden=!menuOpen;bar.textContent=m.chatBarText+(menuOpen?' ▾':' ▴');};
 bar.onclick=()=>{menuOpen=!menuOpen;show();};show();}
$('#user').onchange=()=>{last='';menuKey='';newUser=true;refresh();loadMenu();};setInterval(loadMenu,3000);loadMenu();
$('#follow').onclick=async()=>{await fetch('/api/follow',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({user:user()})});refresh();};
setInterval(refresh,700);refresh();
</script></body></html>`;
}
