# Issue 12 #3: routes resolve against one base, the <Location> that sets the
# handler. A path under any other prefix is 404, so a rule on an inner
# <Location> (here Require all denied on /guarded/webhooks) cannot be stepped
# around by /guarded/anything/webhooks.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHTest;

my $tok = token('routes-1', ['octo:read.webhooks', 'octo:write.webhooks']);
is(api('GET', '/webhooks', token => $tok)->{code}, 200, '/octo/webhooks');
is(api('GET', '/webhooks', token => $tok, prefix => '/alt/prefix')->{code}, 200, '/alt/prefix/webhooks');
is(api('GET', '/webhooks/', token => $tok)->{code}, 200, 'one trailing slash is fine');

for my $p ('/octo/anything/webhooks', '/octo/octo/webhooks', '/octo/alt/prefix/webhooks',
           '/alt/prefix/x/webhooks', '/alt/webhooks', '/guarded/x/webhooks', '/guarded/guarded/webhooks',
           '/octo/x/v1/notifications/subscriptions', '/octox/webhooks') {
    my $r = api('GET', $p, token => $tok, prefix => '');
    is($r->{code}, 404, "GET $p: 404");
}
my $r = api('POST', '/octo/x/webhooks', token => $tok, prefix => '',
            json => { event => 'booking_update', url => 'https://example.com/routes' });
is($r->{code}, 404, 'POST under another prefix: 404');
is(psql_query(q{SELECT count(*) FROM octo_webhooks.webhooks WHERE connection_id = 'routes-1'})->[0][0], 0,
   'nothing stored');

# the inner Location's rule holds, and cannot be stepped around
is(api('GET', '/guarded/webhooks', token => $tok, prefix => '')->{code}, 403, 'the inner Location denies /guarded/webhooks');
is(api('GET', '/guarded/x/webhooks', token => $tok, prefix => '')->{code}, 404, '/guarded/x/webhooks is not a way around it');
# The routes are no files: the file system is not walked for them (it cost ~11
# system calls a request: a stat and an .htaccess open per directory), so an
# .htaccess that breaks every file under the document root leaves them alone.
my $htaccess = Apache::Test::vars('documentroot') . '/.htaccess';
END { unlink $htaccess if $htaccess }
open(my $fh, '>', $htaccess) or die "$htaccess: $!";
print $fh "ThisIsNotADirective on\n";
close $fh;
is(api('GET', '/index.html', prefix => '', openapi => 0)->{code}, 500, 'a file under the document root: the broken .htaccess is read (500)');
is(api('GET', '/webhooks', token => $tok)->{code}, 200, 'a route: not walked (200)');
is(api('GET', '/webhooks', token => $tok, prefix => '/alt/prefix')->{code}, 200, '... under every base');
is(api('GET', '/octo/nope', token => $tok, prefix => '')->{code}, 404, 'an unknown path under the base: the handler\'s 404');
is(api('GET', '/guarded/webhooks', token => $tok, prefix => '')->{code}, 403, 'the inner Location\'s rule still holds');
unlink $htaccess;
done_testing();
