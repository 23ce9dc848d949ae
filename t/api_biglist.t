# Issue 10: a huge list must not leave an httpd child at its high-water
# mark. GET /webhooks renders rows as PostgreSQL sends them (single-row
# mode) and flushes them to the client chunk by chunk, so a 30,000-webhook
# list (about 12 MB of JSON) never sits in the child whole — not as a
# PGresult, not as a json_t tree, not as one string. One httpd child here:
# its VmHWM (the most memory it ever held) is read from /proc before and
# after, and may grow by a fraction of the answer only. Holding the list
# whole costs several times its size, whatever the load on the machine; the
# bound does not depend on timing (a slow reader blocks the writer, it does
# not make it buffer).
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use JSON::PP;

my $N = 30_000;
my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksDispatcher Off', 'OctoWebhooksMaxWebhooks 0',
    'ServerLimit 1', 'StartServers 1', 'MaxRequestWorkers 10', 'MinSpareThreads 1', 'MaxSpareThreads 10'));
my $small = token('small', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $big = token('big', ['octo:read.webhooks'], db => $db);
q_at($db, q{INSERT INTO octo_webhooks.connections (id) VALUES ('big') ON CONFLICT DO NOTHING});
q_at($db, qq{INSERT INTO octo_webhooks.webhooks (connection_id, event, event_type, url, url_display, headers)
             SELECT 'big', 'booking_update', 'booking_update', u, u, '{"X-Tenant": "t"}'::jsonb
               FROM (SELECT 'https://hooks.example.com/' || repeat('p', 200) || '/' || i AS u, i
                       FROM generate_series(1, $N) i) s ORDER BY i});

my @children = grep { $_ != ($h->pid // 0) } child_pids($h->pid);
is(scalar @children, 1, 'one httpd child') or diag("children: @children");
my $child = $children[0];
sub status_kb { my ($pid, $field) = @_; open(my $fh, '<', "/proc/$pid/status") or return -1;
                while (<$fh>) { return $1 if /^\Q$field\E:\s+(\d+) kB/ } return -1 }
sub child_pids {
    my ($ppid) = @_;
    opendir(my $d, '/proc') or return;
    my @pids;
    for my $pid (grep { /^\d+$/ } readdir $d) {
        open(my $fh, '<', "/proc/$pid/stat") or next;
        my $stat = <$fh> // '';
        push @pids, $pid if $stat =~ /\) \S (\d+)/ && $1 == $ppid;
    }
    return @pids;
}

# warm up: connections made, statements prepared, every thread's arena touched
for (1 .. 30) {
    api('POST', '/webhooks', base => $h->base, token => $small,
        json => { event => 'booking_update', url => "https://example.com/$_" }) if $_ <= 3;
    api('GET', '/webhooks', base => $h->base, token => $small);
}
my $small_list = api('GET', '/webhooks', base => $h->base, token => $small);
is($small_list->{code}, 200, 'a small list');
ok(defined $small_list->{headers}->header('Content-Length'), 'a small list goes out whole, with a Content-Length');

my $hwm0 = status_kb($child, 'VmHWM');
my ($bytes, $ok_lists) = (0, 0);
for my $round (1 .. 3) {
    my $r = api('GET', '/webhooks', base => $h->base, token => $big, openapi => 0);
    my $list = eval { decode_json($r->{body}) } || [];
    $bytes = length $r->{body};
    $ok_lists++ if $r->{code} == 200 && @$list == $N && $list->[0]{url} =~ m{/1$} && $list->[-1]{url} =~ m{/$N$}
                   && $list->[-1]{headers}{'X-Tenant'} eq 't';
}
is($ok_lists, 3, "three lists of $N webhooks, whole and in order");
my $hwm1 = status_kb($child, 'VmHWM');
my $grew = $hwm1 - $hwm0;
diag(sprintf('list %.1f MB; child VmHWM %d kB before, %d kB after (+%d kB), VmRSS now %d kB',
             $bytes / 1e6, $hwm0, $hwm1, $grew, status_kb($child, 'VmRSS')));
SKIP: {
    # AddressSanitizer keeps freed memory in quarantine: the high-water mark
    # says nothing there
    skip 'the high-water mark is not measurable under AddressSanitizer', 1 if $ENV{OWH_ASAN};
    ok($hwm0 > 0 && $grew < $bytes / 1024 / 4,
       'the child\'s high-water mark grew by less than a quarter of the list');
}

# HEAD: the headers of the streamed answer, no body
my $head = api('HEAD', '/webhooks', base => $h->base, token => $big, openapi => 0);
is($head->{code}, 200, 'HEAD of the big list: 200');
is($head->{body}, '', 'and no body');
my $head_small = api('HEAD', '/webhooks', base => $h->base, token => $small, openapi => 0);
is($head_small->{code} . ' ' . length($head_small->{body}), '200 0', 'HEAD of a small list: 200, no body');

# a client that leaves mid-list: the child stops quietly and serves on
{
    require IO::Socket::INET;
    my ($port) = $h->base =~ m{:(\d+)/};
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die "connect: $!";
    print $sock "GET /octo/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $big\r\n\r\n";
    my $got = '';
    while (length($got) < 100_000) { sysread($sock, $got, 65536, length $got) or last }
    like($got, qr{^HTTP/1\.1 200}, 'a list begins');
    close $sock;
    sleep 1;
    is(api('GET', '/webhooks', base => $h->base, token => $small)->{code}, 200, 'the child serves on after the client left');
    unlike($h->error_log, qr/OWH00403/, 'and logs no failed list for it');
}
# A list of up to 100 is read in one result, a longer one streamed: both
# whole and in order at the edge (100, then 101 after one more).
my $edge = token('edge', ['octo:read.webhooks'], db => $db);
q_at($db, q{INSERT INTO octo_webhooks.connections (id) VALUES ('edge') ON CONFLICT DO NOTHING});
for my $n (100, 101) {
    q_at($db, q{INSERT INTO octo_webhooks.webhooks (connection_id, event, event_type, url, url_display)
                SELECT 'edge', 'booking_update', 'booking_update', u, u
                  FROM (SELECT 'https://e.example.com/' || i AS u, i FROM generate_series(1, $1::int) i) s
                 WHERE NOT EXISTS (SELECT 1 FROM octo_webhooks.webhooks w WHERE w.url = s.u AND w.connection_id = 'edge')
                 ORDER BY i}, $n);
    my $r = api('GET', '/webhooks', base => $h->base, token => $edge);
    is_deeply([ map { $_->{url} } @{ $r->{json} || [] } ], [ map { "https://e.example.com/$_" } 1 .. $n ],
              "a list of $n: whole and in order");
}
done_testing();
