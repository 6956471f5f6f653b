// All styling lives inside the shadow root. `:host{all:initial}` is not enough: host-page rules
// with !important still win on the host element and their inherited properties (text-transform,
// letter-spacing…) flow in, so the root container resets everything again and every element
// sets the inherited text properties itself.
export const css = `
:host{all:initial}
.w{all:initial;--c:#3b5bdb;position:fixed;right:20px;bottom:20px;z-index:2147483000}
*{box-sizing:border-box;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:0;text-transform:none;letter-spacing:normal;word-spacing:normal;text-align:left;text-indent:0;text-shadow:none;visibility:inherit}
button{cursor:pointer;border:0;background:none;padding:6px 10px;border-radius:6px}
button:focus-visible,textarea:focus-visible,input:focus-visible,a:focus-visible{outline:2px solid var(--c);outline-offset:2px}
.l{display:grid;place-items:center;width:56px;height:56px;border-radius:50%;background:var(--c);color:#fff;font-size:24px;box-shadow:0 4px 12px #0004;position:relative}
.l svg{fill:#fff}
.b{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;border-radius:10px;background:#d6336c;color:#fff;font-size:12px;line-height:20px;padding:0 5px}
.p{position:absolute;right:0;bottom:68px;width:370px;height:min(600px,calc(100vh - 110px));background:#fff;border-radius:12px;box-shadow:0 8px 30px #0005;display:flex;flex-direction:column;overflow:hidden}
.h{background:var(--c);display:flex;align-items:center;gap:8px;padding:10px 12px}
.h *{color:#fff}
.h h2{flex:1;font-size:16px;font-weight:600}
.m{flex:1;overflow:auto;padding:12px;display:flex;flex-direction:column;gap:8px;list-style:none}
.li{display:block;width:100%;text-align:left;padding:10px;border-bottom:1px solid #eee;border-radius:0}
.li small,time,.s{font-size:12px;color:#666}
.u{background:#d6336c;color:#fff;border-radius:9px;padding:0 6px;font-size:12px;margin-left:6px}
.g{max-width:80%;padding:8px 10px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere}
.g.a{align-self:flex-start;background:#f1f3f5}
.g.v{align-self:flex-end;background:var(--c)}
.g.v,.g.v *{color:#fff}
.g a{text-decoration:underline}
.f{display:flex;gap:6px;padding:8px;border-top:1px solid #eee}
textarea,input{flex:1;resize:none;border:1px solid #ccc;border-radius:6px;padding:6px 8px;min-width:0}
.pri{background:var(--c);color:#fff}
.n{padding:8px 12px;background:#fff8e1;display:flex;flex-direction:column;gap:4px}
.e{color:#c92a2a}
.x{background:#ffe3e3;padding:8px 12px;display:flex;align-items:center}
.x p{flex:1}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:480px){.p{position:fixed;inset:0;width:100%;height:100%;border-radius:0}.l[aria-expanded=true]{display:none}}
`;
