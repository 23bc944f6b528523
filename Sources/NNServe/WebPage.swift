/// The page at `/`: draw a digit (mouse, finger or pen), see the probabilities after each
/// stroke and the picture the model saw; pick a model; upload a picture. No CDN, no build step:
/// plain HTML, CSS and JavaScript in the binary, calling /v1/models and /v1/models/{name}/classify.
/// For a model with example pictures (/v1/models/{name}/examples), a row of them to click: each is
/// sent as a one-picture IDX body, so the model sees exactly the test set's pixels.
enum WebPage {
    static let html = #"""
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>nn-serve</title><link rel="icon" href="data:,">
<style>
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:44rem;padding:1rem;color:#111}
#pad{border:2px solid #333;touch-action:none;width:100%;max-width:280px;aspect-ratio:1;background:#fff;cursor:crosshair}
#saw{width:112px;height:112px;image-rendering:pixelated;border:1px solid #999}
.row{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
.bar{display:flex;align-items:center;gap:.4rem;font-variant-numeric:tabular-nums}
.bar span:first-child{width:6rem;overflow:hidden;text-overflow:ellipsis}
.bar div{background:#2a6fdb;height:1rem}
button,select,input{font-size:1rem;margin:.25rem 0}
:focus{outline:3px solid #f90}
#exlist button{padding:2px;background:#fff;border:1px solid #999}#exlist canvas{width:56px;height:56px;image-rendering:pixelated;display:block}
</style></head><body>
<h1>Draw a digit</h1>
<p><label for="model">Model</label> <select id="model"></select></p>
<div class="row">
 <div><canvas id="pad" width="280" height="280" tabindex="0" aria-label="Drawing area: draw a digit with the mouse, a finger or a pen"></canvas><br>
  <button id="clear" type="button">Clear</button>
  <label for="upload">Or upload a picture</label> <input id="upload" type="file" accept="image/png,image/jpeg">
  <div id="examples" hidden><p id="exlabel">Or pick a test picture:</p><div id="exlist" role="group" aria-labelledby="exlabel"></div></div></div>
 <div><p>Prediction: <strong id="answer" aria-live="polite">draw something</strong></p>
  <div id="bars" role="list" aria-label="Probabilities"></div>
  <p>What the model saw:</p><canvas id="saw" width="28" height="28" aria-label="The 28 by 28 picture given to the model"></canvas></div>
</div>
<script>
const pad=document.getElementById('pad'),ctx=pad.getContext('2d'),sel=document.getElementById('model');
function blank(){ctx.fillStyle='#fff';ctx.fillRect(0,0,pad.width,pad.height);}
blank();let drawing=false,last=null;
function pos(e){const r=pad.getBoundingClientRect();return [(e.clientX-r.left)*pad.width/r.width,(e.clientY-r.top)*pad.height/r.height];}
pad.addEventListener('pointerdown',e=>{drawing=true;last=pos(e);pad.setPointerCapture(e.pointerId);});
pad.addEventListener('pointermove',e=>{if(!drawing)return;const p=pos(e);ctx.strokeStyle='#000';ctx.lineWidth=18;ctx.lineCap='round';ctx.beginPath();ctx.moveTo(last[0],last[1]);ctx.lineTo(p[0],p[1]);ctx.stroke();last=p;});
function end(){if(drawing){drawing=false;pad.toBlob(classify,'image/png');}}
pad.addEventListener('pointerup',end);pad.addEventListener('pointercancel',end);
document.getElementById('clear').onclick=()=>{blank();document.getElementById('answer').textContent='draw something';document.getElementById('bars').innerHTML='';};
document.getElementById('upload').onchange=e=>{if(e.target.files[0])classify(e.target.files[0]);};
// Answers may arrive out of order: only the latest request's answer is shown. body.dataset.answered
// counts the answers shown (the browser test waits on it).
let asked=0;
function show(w,h,pixels){const s=document.getElementById('saw'),c=s.getContext('2d');s.width=w;s.height=h;const im=c.createImageData(w,h);
 pixels.forEach((v,i)=>{im.data[4*i]=im.data[4*i+1]=im.data[4*i+2]=v;im.data[4*i+3]=255;});c.putImageData(im,0,0);}
// A test picture as a one-picture IDX file (unsigned bytes, dims 1, height, width; big-endian).
function idx(w,h,pixels){const b=new Uint8Array(16+w*h),v=new DataView(b.buffer);v.setUint32(0,0x0803);v.setUint32(4,1);v.setUint32(8,h);v.setUint32(12,w);b.set(pixels,16);return new Blob([b]);}
async function loadExamples(){
 const box=document.getElementById('examples'),list=document.getElementById('exlist');list.innerHTML='';box.hidden=true;
 const r=await fetch('/v1/models/'+encodeURIComponent(sel.value)+'/examples');if(!r.ok)return;const j=await r.json();
 for(const e of j.examples){const b=document.createElement('button');b.type='button';
  b.setAttribute('aria-label','Test picture '+e.index+(e.name?': '+e.name:''));b.title=e.name||('#'+e.index);
  const c=document.createElement('canvas');c.width=j.width;c.height=j.height;b.appendChild(c);list.appendChild(b);
  const im=c.getContext('2d').createImageData(j.width,j.height);e.pixels.forEach((v,i)=>{im.data[4*i]=im.data[4*i+1]=im.data[4*i+2]=v;im.data[4*i+3]=255;});c.getContext('2d').putImageData(im,0,0);
  b.onclick=()=>classify(idx(j.width,j.height,e.pixels),[j.width,j.height,e.pixels]);}
 box.hidden=j.examples.length===0;}
sel.onchange=loadExamples;
async function classify(blob,picture){
 const n=++asked,ans=document.getElementById('answer');let r,j;
 try{r=await fetch('/v1/models/'+encodeURIComponent(sel.value)+'/classify?top=10',{method:'POST',body:blob});j=await r.json();}
 catch(e){if(n===asked)ans.textContent='the server did not answer: '+e;return;}
 if(n!==asked)return;
 document.body.dataset.answered=n;
 if(!r.ok){ans.textContent=j.error;return;}
 const p=j.predictions[0];ans.textContent=p.name;ans.dataset.cls=p.class;
 const bars=document.getElementById('bars');bars.innerHTML='';
 for(const t of p.top){const d=document.createElement('div');d.className='bar';d.setAttribute('role','listitem');
  d.innerHTML='<span></span><div style="width:'+(t.probability*12).toFixed(2)+'rem"></div><span>'+(t.probability*100).toFixed(1)+' %</span>';
  d.firstChild.textContent=t.name;bars.appendChild(d);}
 if(j.picture)show(j.picture.width,j.picture.height,j.picture.pixels);else if(picture)show(...picture);
}
fetch('/v1/models').then(r=>r.json()).then(j=>{for(const m of j.models){const o=document.createElement('option');o.value=o.textContent=m.name;sel.appendChild(o);}loadExamples();});
</script></body></html>
"""#
}
