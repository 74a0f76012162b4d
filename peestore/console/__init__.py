"""The operator console: web pages for the people at the machine (SPEC section 11).

``RestPlugin(console=True)`` adds the routes; this package loads on the first
request to one of them.  The pages are bottle templates; their script reads
and writes through the plugin's JSON routes, so the same rules apply
(authentication, the admin role, ``If-Match``, validation).  See docs/console.md.
"""
