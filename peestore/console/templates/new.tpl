% rebase("base", title=title)
<p class="crumbs"><a href="{{home}}{{component}}">{{component}}</a></p>
<h1>New {{component}} record</h1>
<form id="record" class="record" autocomplete="off" novalidate></form>
