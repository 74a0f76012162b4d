% rebase("base", title=title)
<h1>Data tools</h1>
<div class="tools">
<section class="tool" id="backup">
<h2>Backup</h2>
<p>A consistent copy of the whole SQLite database, taken while the machine keeps working.</p>
<p><a class="button primary" href="{{root}}/db/backup.sqlite" download>Download a backup</a></p>
</section>
<section class="tool" id="restore">
<h2>Restore</h2>
<p>Replace the whole database with a backup file. The file is checked first (a dry run that changes nothing); then you confirm.</p>
<form id="restore-form" autocomplete="off">
<label>Backup file <input type="file" name="file" accept=".sqlite,.db,.sqlite3"></label>
<label>Reason for the change <input type="text" name="reason" id="restore-reason" maxlength="2000" autocomplete="off"></label>
<small class="muted">Recorded in the audit log with the restore.</small>
<div class="actions"><button class="primary">Check the file</button></div>
</form>
<div id="restore-result" class="result" aria-live="polite"></div>
</section>
<section class="tool" id="export">
<h2>CSV export</h2>
<p>Every table as a CSV file, the audit log included, in one zip.</p>
<p><a class="button primary" href="{{root}}/db/export.zip" download>Download the CSV export</a></p>
</section>
<section class="tool" id="import">
<h2>CSV import</h2>
<p>Load a zip as the export makes it: all or nothing, every row checked as the REST API checks it. The audit log in the zip is skipped.</p>
<form id="import-form" autocomplete="off">
<label>Zip file <input type="file" name="file" accept=".zip"></label>
<label>Mode <select name="mode"><option value="append">append: add the rows</option><option value="replace">replace: empty each table first</option></select></label>
<label>Reason for the change <input type="text" name="reason" id="import-reason" maxlength="2000" autocomplete="off"></label>
<small class="muted">Recorded in the audit log with the import; required for tables whose changes need a reason.</small>
<div class="actions"><button class="primary">Import…</button></div>
</form>
<div id="import-result" class="result" aria-live="polite"></div>
</section>
</div>
