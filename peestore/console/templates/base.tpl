<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} · peestore console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{{css}}">
<script src="{{js}}" defer></script>
</head>
<body data-page="{{page}}" data-root="{{root}}" data-user="{{user}}" data-auth="{{auth}}" data-admin="{{admin}}" data-db="{{db}}" data-components="{{components}}" data-meta="{{meta}}" data-id="{{record_id}}">
<header class="top">
<a class="brand" href="{{home}}">peestore</a>
<nav>
<a href="{{home}}"{{!' class="on"' if page == 'home' else ''}}>Home</a>
% if db == "1":
<a href="{{home}}audit"{{!' class="on"' if page == 'audit' else ''}}>Audit log</a>
<a href="{{home}}diagram"{{!' class="on"' if page == 'diagram' else ''}}>Diagram</a>
%   if admin == "1":
<a href="{{home}}data"{{!' class="on"' if page == 'data' else ''}}>Data tools</a>
%   end
% end
</nav>
<span id="who" class="who">{{user}}</span>
</header>
<div id="flash" role="alert" hidden></div>
<main id="main" data-state="loading">
{{!base}}
</main>
<noscript><p class="note">The console needs JavaScript to load and change data.</p></noscript>
</body>
</html>
