# The SSRF guard without OctoWebhooksAllowNetworks: literal forbidden
# addresses are refused at create and update (400), and a hostname that
# resolves to one (localhost) is refused at connect time, recorded as a
# failed attempt with the reason; the endpoint is never reached.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;

my $db = new_database();
my $h = start_httpd(conninfo => $db, guarded => 1);
my $sink = start_sink();
my $tok = token('res-x', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $port = $sink->{port};

for my $url ("http://127.0.0.1:$port/", 'http://10.1.2.3/', 'http://192.168.0.10/x', 'http://169.254.169.254/latest/meta-data',
             'http://100.64.0.1/', 'http://0.0.0.0/', 'http://[::1]/', "http://[::ffff:127.0.0.1]:$port/",
             'http://[fe80::1]/', 'http://224.0.0.1/', 'http://240.0.0.1/', 'http://[fd00::1]/') {
    my $r = api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'product_update', url => $url });
    is($r->{code}, 400, "create refused: $url");
    like($r->{json}{errorMessage} // '', qr/forbidden address/, 'the message says why');
}
my $ok = api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'product_update', url => 'https://93.184.216.34/' });
is($ok->{code}, 200, 'a public address is accepted');
is(api('PATCH', "/webhooks/$ok->{json}{id}", base => $h->base, token => $tok, json => { url => 'http://127.0.0.2/' })->{code}, 400,
   'update to a forbidden address refused');
# A stored URL the body leaves alone is judged again when its host is an IP
# literal (update_webhook() hands it back unchanged, the module checks it and
# calls again): a public one passes, one the rule now refuses (here: set
# behind the API) is a 400 and nothing changes, the masked form of it too.
my $r = api('PATCH', "/webhooks/$ok->{json}{id}", base => $h->base, token => $tok, json => { active => JSON::PP::false });
is($r->{code} . ' ' . ($r->{json}{active} ? 'active' : 'inactive'), '200 inactive', 'PATCH keeping a public literal URL: 200, applied');
q_at($db, q{UPDATE octo_webhooks.webhooks SET url = 'http://u:pw@127.0.0.3/x', url_display = 'http://u:****@127.0.0.3/x' WHERE id = $1}, $ok->{json}{id});
$r = api('PATCH', "/webhooks/$ok->{json}{id}", base => $h->base, token => $tok, json => { retryOnError => JSON::PP::false });
is($r->{code}, 400, 'PATCH keeping a stored forbidden literal URL: 400');
like($r->{json}{errorMessage} // '', qr/forbidden address/, 'the message says why');
$r = api('PATCH', "/webhooks/$ok->{json}{id}", base => $h->base, token => $tok,
         json => { url => 'http://u:****@127.0.0.3/x', retryOnError => JSON::PP::false });
is($r->{code}, 400, 'PATCH sending its masked form back: 400');
is_deeply(q_at($db, q{SELECT retry_on_error, url FROM octo_webhooks.webhooks WHERE id = $1}, $ok->{json}{id}),
          [[ 't', 'http://u:pw@127.0.0.3/x' ]], 'neither changed the row');
api('DELETE', "/webhooks/$ok->{json}{id}", base => $h->base, token => $tok);

# a name that resolves to loopback passes the URL check, not the connect
my $lh = api('POST', '/webhooks', base => $h->base, token => $tok, json => {
    event => 'product_update', url => "http://localhost:$port/via-name", retryOnError => JSON::PP::false });
is($lh->{code}, 200, 'a hostname is accepted at create (what it resolves to is judged at connect time)');
emit($db, 'product_update', { id => 'p-ssrf' });
my $row = wait_until(sub { q_at($db, q{SELECT status, last_error FROM octo_webhooks.deliveries WHERE webhook_id = $1 AND status <> 'pending'}, $lh->{json}{id})->[0] }, 10);
is($row->[0], 'failed', 'localhost -> 127.0.0.1: the delivery failed');
like($row->[1], qr/refused by the SSRF guard: (127\.0\.0\.1|::1) is/, 'with the reason and the address');
my $att = q_at($db, q{SELECT a.status_code, a.error FROM octo_webhooks.attempts a JOIN octo_webhooks.deliveries d ON d.id = a.delivery_id WHERE d.webhook_id = $1}, $lh->{json}{id});
is(scalar @$att, 1, 'recorded as an attempt');
is($att->[0][0] // '', '', 'without a status code');
# the delivery is final (failed, retryOnError false) and its one attempt was
# recorded: a request it made would be in the sink's log by now
is(scalar @{ $sink->requests('/via-name') }, 0, 'the endpoint was never reached');
done_testing();
