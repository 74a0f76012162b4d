% rebase("base", title=title)
<h1>Audit log</h1>
<form id="audit-filters" class="filters grid" autocomplete="off">
<label>Component <select name="component"><option value="">any</option>
% for name in names:
<option value="{{name}}">{{name}}</option>
% end
</select></label>
<label>Record id <input name="record_id"></label>
<label>Actor <input name="actor"></label>
<label>Operation <select name="operation"><option value="">any</option>
% for name in operations:
<option value="{{name}}">{{name}}</option>
% end
</select></label>
<label>Since (your time) <input name="since" type="datetime-local" step="1"></label>
<label>Until (your time) <input name="until" type="datetime-local" step="1"></label>
<div class="actions"><button class="primary">Apply</button> <button type="button" id="clear">Clear</button></div>
</form>
<p id="summary" class="muted"></p>
<ol id="entries" class="entries"></ol>
<div class="pager">
<button type="button" id="prev">Newer</button>
<span id="position" class="muted"></span>
<button type="button" id="next">Older</button>
</div>
