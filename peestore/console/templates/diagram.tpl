% rebase("base", title=title)
<div class="titlebar">
<h1>Schema diagram</h1>
<a class="button" href="{{root}}/db/diagram.svg" target="_blank" rel="noopener">Open full size</a>
</div>
<p class="muted">Every table of the live database, its columns and types, primary and foreign keys.</p>
<div class="scroll diagram"><img id="diagram" src="{{root}}/db/diagram.svg" alt="The schema diagram: every table, its columns and keys"></div>
