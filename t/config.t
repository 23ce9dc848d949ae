# Directives: httpd -t refuses bad values with a message naming the
# directive; a config using every directive passes; every config member has a
# default and a merge rule (read from the source, as mod_auth_openidc checks).
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use File::Temp qw(tempdir);
use lib 't/lib';
use OWHConf qw(write_httpd_conf);

my $dir = tempdir(CLEANUP => 1);

# httpd -t of the common configuration plus body (never started: port 1).
sub httpd_t {
    my ($body) = @_;
    write_httpd_conf("$dir/httpd.conf", root => $dir, port => 1, location => undef, directives => $body);
    my $httpd = $ENV{OWH_TEST_HTTPD} || "/usr/sbin/apache2";
    my $out = `$httpd -t -f $dir/httpd.conf 2>&1`;
    return ($? == 0, $out);
}

my $all = join("\n",
    'OctoWebhooksDatabase "host=/tmp dbname=x user=y connect_timeout=5"',
    'OctoWebhooksPoolMax 16', 'OctoWebhooksPoolKeep 4', 'OctoWebhooksPoolTTL 2m',
    'OctoWebhooksPoolWait 500ms', 'OctoWebhooksListCacheTTL 5s', 'OctoWebhooksListCacheSize 65536',
    'OctoWebhooksConnectTimeout 5', 'OctoWebhooksDispatcher Off',
    'OctoWebhooksRetrySchedule 1s 5s "1m"', 'OctoWebhooksDeliveryConnectTimeout 2s',
    'OctoWebhooksDeliveryTimeout 10s', 'OctoWebhooksMaxConcurrency 100', 'OctoWebhooksMaxPerHost 10',
    'OctoWebhooksBatchSize 50', 'OctoWebhooksLease 30s', 'OctoWebhooksPollInterval 1s',
    'OctoWebhooksResponseCap 4096', 'OctoWebhooksAllowNetworks 127.0.0.1/32 ::1 10.0.0.0/8',
    'OctoWebhooksSupplierId "s-1"', 'OctoWebhooksSupplierName "Supplier"',
    'OctoWebhooksSupplierReference "REF"', 'OctoWebhooksSupplierWebsite "https://s.example.com"',
    'OctoWebhooksWebhookConcurrency 4', 'OctoWebhooksWebhookRate 50', 'OctoWebhooksMaxRetryAfter 10m',
    'OctoWebhooksDisableAfter 3d', 'OctoWebhooksSecretGrace 12h', 'OctoWebhooksMaxPayloadSize 1048576',
    'OctoWebhooksResolve booking_update product.updated', 'OctoWebhooksSupplierApi "https://api.example.com/octo/"',
    'OctoWebhooksSupplierApiToken "tok-123"', 'OctoWebhooksDispatchers 4', 'OctoWebhooksMigrate Off',
    'OctoWebhooksMaxWebhooks 500', 'OctoWebhooksTriggerRate 0',
    '<VirtualHost 127.0.0.1:1>', 'OctoWebhooksDatabase "dbname=other"', 'OctoWebhooksPoolMax 6',
    '</VirtualHost>', '<Location /octo>', 'SetHandler octo-webhooks', 'OctoWebhooksMaxBodySize 1024',
    'OctoWebhooksAuth remote-user', '</Location>');
my ($ok, $out) = httpd_t($all);
ok($ok, 'every directive at a valid value passes httpd -t') or diag($out);

my @bad = (
    [ 'OctoWebhooksPoolMax 0', 'OctoWebhooksPoolMax' ],
    [ 'OctoWebhooksPoolMax many', 'OctoWebhooksPoolMax' ],
    [ 'OctoWebhooksPoolKeep -1', 'OctoWebhooksPoolKeep' ],
    [ "OctoWebhooksPoolMax 2\nOctoWebhooksPoolKeep 9", 'OctoWebhooksPoolKeep' ],
    [ 'OctoWebhooksPoolTTL forever', 'OctoWebhooksPoolTTL' ],
    [ 'OctoWebhooksConnectTimeout 0', 'OctoWebhooksConnectTimeout' ],
    [ 'OctoWebhooksListCacheTTL 2h', 'OctoWebhooksListCacheTTL' ],
    [ 'OctoWebhooksListCacheSize -1', 'OctoWebhooksListCacheSize' ],
    [ 'OctoWebhooksListCacheSize 1G', 'OctoWebhooksListCacheSize' ],
    [ "<Location /x>\nOctoWebhooksMaxBodySize abc\n</Location>", 'OctoWebhooksMaxBodySize' ],
    [ 'OctoWebhooksMaxBodySize 10', 'OctoWebhooksMaxBodySize' ],
    [ q{OctoWebhooksDatabase "host='unterminated"}, 'OctoWebhooksDatabase' ],
    [ 'OctoWebhooksDatabase "nokey"', 'OctoWebhooksDatabase' ],
    [ 'OctoWebhooksAuth foo', 'OctoWebhooksAuth' ],
    [ 'OctoWebhooksRetrySchedule "5x"', 'OctoWebhooksRetrySchedule' ],
    [ 'OctoWebhooksRetrySchedule 5s -1s', 'OctoWebhooksRetrySchedule' ],
    [ 'OctoWebhooksDispatcher maybe', 'OctoWebhooksDispatcher' ],
    [ 'OctoWebhooksDispatchers 0', 'OctoWebhooksDispatchers' ],
    [ 'OctoWebhooksMigrate maybe', 'OctoWebhooksMigrate' ],
    [ 'OctoWebhooksDispatchers 65', 'OctoWebhooksDispatchers' ],
    [ "OctoWebhooksResolve nope\nOctoWebhooksSupplierApi https://a/", 'OctoWebhooksResolve' ],
    [ 'OctoWebhooksResolve all', 'OctoWebhooksSupplierApi' ],
    [ 'OctoWebhooksSupplierApi ftp://a/', 'OctoWebhooksSupplierApi' ],
    [ 'OctoWebhooksSupplierApi "https://a/?x=1"', 'OctoWebhooksSupplierApi' ],
    [ 'OctoWebhooksSupplierApiToken "a b"', 'OctoWebhooksSupplierApiToken' ],
    [ 'OctoWebhooksDeliveryTimeout 0', 'OctoWebhooksDeliveryTimeout' ],
    [ "OctoWebhooksDeliveryTimeout 10s\nOctoWebhooksDeliveryConnectTimeout 20s", 'OctoWebhooksDeliveryConnectTimeout' ],
    [ "OctoWebhooksDeliveryTimeout 30s\nOctoWebhooksLease 10s", 'OctoWebhooksLease' ],
    [ 'OctoWebhooksMaxConcurrency 0', 'OctoWebhooksMaxConcurrency' ],
    [ 'OctoWebhooksMaxPerHost x', 'OctoWebhooksMaxPerHost' ],
    [ 'OctoWebhooksBatchSize 100000', 'OctoWebhooksBatchSize' ],
    [ 'OctoWebhooksPollInterval 1ms', 'OctoWebhooksPollInterval' ],
    [ 'OctoWebhooksResponseCap -5', 'OctoWebhooksResponseCap' ],
    [ 'OctoWebhooksAllowNetworks 10.0.0.0/33', 'OctoWebhooksAllowNetworks' ],
    [ 'OctoWebhooksAllowNetworks example.com', 'OctoWebhooksAllowNetworks' ],
    [ 'OctoWebhooksWebhookConcurrency 0', 'OctoWebhooksWebhookConcurrency' ],
    [ 'OctoWebhooksWebhookRate -1', 'OctoWebhooksWebhookRate' ],
    [ 'OctoWebhooksMaxRetryAfter 8d', 'OctoWebhooksMaxRetryAfter' ],
    [ 'OctoWebhooksDisableAfter 0', 'OctoWebhooksDisableAfter' ],
    [ 'OctoWebhooksSecretGrace soon', 'OctoWebhooksSecretGrace' ],
    [ 'OctoWebhooksMaxPayloadSize 100', 'OctoWebhooksMaxPayloadSize' ],
    [ 'OctoWebhooksMaxWebhooks -1', 'OctoWebhooksMaxWebhooks' ],
    [ 'OctoWebhooksMaxWebhooks lots', 'OctoWebhooksMaxWebhooks' ],
    [ 'OctoWebhooksTriggerRate -1', 'OctoWebhooksTriggerRate' ],
    [ "<VirtualHost 127.0.0.1:1>\nOctoWebhooksPoolMax 1\nOctoWebhooksPoolKeep 2\n</VirtualHost>", 'OctoWebhooksPoolKeep' ],
);
for my $case (@bad) {
    my ($ok, $out) = httpd_t($case->[0]);
    (my $name = $case->[0]) =~ s/\n/; /g;
    ok(!$ok, "refused: $name");
    like($out, qr/\Q$case->[1]\E/, "the message names $case->[1]");
}

# One database, one delivery configuration: virtual hosts naming the same
# database with different database-wide settings are refused, naming both.
($ok, $out) = httpd_t(join("\n", 'OctoWebhooksDatabase "dbname=shared"', 'OctoWebhooksRetrySchedule 5s',
    '<VirtualHost 127.0.0.1:1>', 'ServerName vh-a.example', 'OctoWebhooksRetrySchedule 1s 1s', '</VirtualHost>'));
ok(!$ok, 'two servers on one database with different retry schedules: refused');
like($out, qr/OWH00105: .*main server.* and vh-a\.example .*differ in OctoWebhooksRetrySchedule/,
     'the message names both servers and the directive');
($ok, $out) = httpd_t(join("\n", 'OctoWebhooksDatabase "dbname=shared"',
    '<VirtualHost 127.0.0.1:1>', 'ServerName vh-b.example', 'OctoWebhooksAllowNetworks 127.0.0.1/32', '</VirtualHost>'));
like($out, qr/differ in OctoWebhooksAllowNetworks/, 'different SSRF allow-lists on one database: refused');
($ok, $out) = httpd_t(join("\n", 'OctoWebhooksDatabase "dbname=shared"', 'OctoWebhooksAllowNetworks 127.0.0.1/32',
    '<VirtualHost 127.0.0.1:1>', 'ServerName vh-c.example', 'OctoWebhooksAllowNetworks 127.0.0.1/32', '</VirtualHost>',
    '<VirtualHost 127.0.0.1:1>', 'ServerName vh-d.example', 'OctoWebhooksDatabase "dbname=other"',
    'OctoWebhooksRetrySchedule 1s', '</VirtualHost>'));
ok($ok, 'the same settings written twice, or another database with its own: accepted') or diag($out);

# every member of the config structs has a default and a merge rule
my $h = do { local (@ARGV, $/) = "$ENV{OWH_SRCDIR}/src/owh_config.h"; <> };
my $c = do { local (@ARGV, $/) = "$ENV{OWH_SRCDIR}/src/owh_config.c"; <> };
my ($merge_srv) = $c =~ /(void \*owh_config_srv_merge\(.*?\n\})/s;
my ($merge_dir) = $c =~ /(void \*owh_config_dir_merge\(.*?\n\})/s;
my ($defaults) = $c =~ /(static apr_status_t finalize_one\(.*?\n\})/s;
my ($create_dir) = $c =~ /(void \*owh_config_dir_create\(.*?\n\})/s;
my ($dir_defaults) = $h =~ /(Directory settings with their defaults applied.*)/s;
$dir_defaults .= $c;
my $members = 0;
for my $struct ([ 'owh_srv_conf_t', $merge_srv ], [ 'owh_dir_conf_t', $merge_dir ]) {
    my ($body) = $h =~ /typedef struct \Q$struct->[0]\E \{(.*?)\} \Q$struct->[0]\E;/s;
    ok($body, "found $struct->[0]");
    $body =~ s{/\* runtime.*}{}s;               # runtime state is not configuration
    $body =~ s{/\*.*?\*/}{}gs;
    for my $decl (split /;/, $body) {
        next unless $decl =~ /\w/;
        my @names = $decl =~ /(\w+)\s*(?=,|$)/g;
        for my $m (@names) {
            $members++;
            like($struct->[1], qr/\b\Q$m\E\b/, "$struct->[0].$m has a merge rule");
            my $has_default = $struct->[0] eq 'owh_srv_conf_t'
                ? ($defaults =~ /\b\Q$m\E\b/ || $m =~ /^(supplier_\w+|allow_networks|allow_networks_text|retry_delays)$/)
                : ($create_dir =~ /\b\Q$m\E\b/);
            ok($has_default, "$struct->[0].$m has a default");
        }
    }
}
cmp_ok($members, '>', 20, 'all config members were found');
done_testing();
