# Issue 12 #2: no pooled database connection is held while a client sends its
# body. 64 clients with junk tokens trickle their bodies (one byte, then
# nothing) into an httpd whose children have 2 connections each; an honest
# GET meanwhile answers 200 within a second. Before the fix the slow clients
# held every connection and the GET waited OctoWebhooksPoolWait for a 503.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use IO::Socket::INET;
use Time::HiRes qw(time);

my $db = new_database();
my $h = start_httpd(conninfo => $db, dispatcher => 0, modules => ['status'], directives => join("\n",
    'OctoWebhooksPoolMax 2', 'OctoWebhooksPoolKeep 1',
    'StartServers 2', 'ServerLimit 2', 'ThreadsPerChild 50', 'MaxRequestWorkers 100',
    'MinSpareThreads 100', 'MaxSpareThreads 100',
    '<Location /server-status>', 'SetHandler server-status', '</Location>'));
my $tok = token('honest', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my ($port) = $h->base =~ m{:(\d+)/};
is(api('GET', '/webhooks', base => $h->base, token => $tok)->{code}, 200, 'the honest client works');

my @slow;
for my $i (1 .. 64) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5) or next;
    $s->autoflush(1);
    print $s "POST /octo/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer junk-$i\r\n"
           . "Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n{";
    push @slow, $s;
}
is(scalar @slow, 64, '64 slow clients connected');
# every one is inside the handler, holding a worker while it reads the body
my $busy = sub {
    my $r = api('GET', '/server-status', base => "http://127.0.0.1:$port", query => 'auto', openapi => 0);
    return $r->{body} =~ /^BusyWorkers: (\d+)/m ? $1 : 0;
};
ok(wait_until(sub { $busy->() > 64 }, 10), 'they hold 64 workers (and the status request one)')
    or diag('BusyWorkers: ' . $busy->());

my @times;
for (1 .. 3) {
    my $t0 = time;
    my $r = api('GET', '/webhooks', base => $h->base, token => $tok);
    push @times, time - $t0;
    is($r->{code}, 200, 'an honest GET answers 200 meanwhile');
}
my ($worst) = sort { $b <=> $a } @times;
ok($worst < 1, sprintf('within 1 s (slowest %.3f s)', $worst));

# the slow clients finish their junk: 403, not a stuck worker
my $s = $slow[0];
print $s '"url": 1' . (' ' x (4000 - 9));
my $line = <$s> // '';
like($line, qr{^HTTP/1\.1 403}, 'a slow client, once its body is in: 403 for its junk token');
close $_ for @slow;
done_testing();
