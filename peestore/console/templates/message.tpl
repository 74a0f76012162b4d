% rebase("base", title=title)
<h1>{{title}}</h1>
<p class="explain" data-status="{{status_code}}">{{text}}</p>
<p>
% if link:
<a class="button" href="{{link[1]}}">{{link[0]}}</a>
% end
<a class="button" href="{{home}}">Console home</a>
</p>
