% rebase("base", title=title)
<p class="crumbs"><a href="{{home}}{{component}}">{{component}}</a></p>
<h1>{{component}} {{record_id}}</h1>
<p id="state" class="state" hidden></p>
<form id="record" class="record" autocomplete="off" novalidate></form>
<h2>History</h2>
<ol id="history" class="entries"></ol>
