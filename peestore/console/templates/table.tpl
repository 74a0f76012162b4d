% rebase("base", title=title)
<div class="titlebar">
<h1>{{component}}</h1>
<a class="button primary" href="{{home}}{{component}}/new">New record</a>
</div>
<form id="filters" class="filters" autocomplete="off"></form>
<p id="summary" class="muted"></p>
<div class="scroll"><table id="rows" class="rows"></table></div>
<div class="pager">
<button type="button" id="prev">Previous</button>
<span id="position" class="muted"></span>
<button type="button" id="next">Next</button>
</div>
