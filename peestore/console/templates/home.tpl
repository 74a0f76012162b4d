% rebase("base", title=title)
<h1>Operator console</h1>
% if db == "1":
<p id="health" class="health">Database: checking…</p>
% end
<h2>Components</h2>
<ul class="cards" id="components">
% for name, model in models:
<li><a href="{{home}}{{name}}"><b>{{name}}</b> <span class="muted">{{model}}</span> <span class="count" data-count="{{name}}">…</span></a></li>
% end
</ul>
% if not models:
<p class="muted">This app registers no models.</p>
% end
