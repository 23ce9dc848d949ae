# The schema's life: databases made by earlier releases (t/fixtures/schema/)
# are upgraded by the module to exactly what a fresh install makes (pg_dump -s,
# schema_migrations, schema_functions); a schema newer than the module, or an
# applied migration whose text changed, is refused at startup; functions are
# re-created when their text changes and dropped when no longer shipped;
# OctoWebhooksMigrate Off only checks and names the command to run.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;

my $HTTPD = $ENV{OWH_TEST_HTTPD} || '/usr/sbin/apache2';
my $PGBIN = $ENV{OWH_TEST_PGBIN};
my $FIX = "$ENV{OWH_SRCDIR}/t/fixtures/schema";

# The module migrates (or checks) in post_config: an httpd that starts is one
# that accepted the schema.
sub migrate_with_module {
    my ($db, $directives) = @_;
    my $h = start_httpd(conninfo => $db, directives => join("\n", 'OctoWebhooksDispatcher Off', $directives // ''));
    $h->stop;
    return $h;
}

# An httpd that must refuse to start: its error log.
sub refused {
    my ($db, $directives) = @_;
    my $h = start_httpd(conninfo => $db, start => 0,
                        directives => join("\n", 'OctoWebhooksDispatcher Off', $directives // ''));
    # refused at the configuration check (stderr) or at post_config (the error log)
    my $conf = $h->conf;
    my $out = `$HTTPD -f '$conf' -k start 2>&1`;
    my $log = wait_until(sub { ($out . $h->error_log) =~ /OWH(?:00006|00105): (.*)/ ? $1 : undef }, 20);
    my $up = api('GET', '/webhooks', base => $h->base)->{code} == 401;
    $h->stop if $up;
    return $up ? "started anyway" : $log // "no refusal logged:\n" . $h->error_log;
}

# A database as the module of a release made it.
sub load_release {
    my ($db, $release) = @_;
    q_at($db, 'CREATE SCHEMA IF NOT EXISTS octo_webhooks');
    q_at($db, 'CREATE TABLE IF NOT EXISTS octo_webhooks.schema_migrations ('
            . ' version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    for my $f (sort glob("$FIX/$release/*.sql")) {
        my ($name, $v) = $f =~ m{/((\d+)_\w+)\.sql$};
        system('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-1', '-d', $db, '-f', $f, '-c',
               sprintf("INSERT INTO octo_webhooks.schema_migrations (version, name) VALUES (%d, '%s')",
                       $v, $name)) == 0 or die "loading $f failed\n";
    }
}

sub schema_dump {
    my ($db) = @_;
    open(my $fh, '-|', "$PGBIN/pg_dump", '-s', '-d', $db) or die "pg_dump: $!";
    my @l = grep { !/^--/ && !/^\\(un)?restrict / && /\S/ } <$fh>;
    close $fh;
    die "pg_dump failed\n" if $?;
    return join('', @l);
}

sub bookkeeping {
    my ($db) = @_;
    my $m = q_at($db, 'SELECT version, name, checksum FROM octo_webhooks.schema_migrations ORDER BY version');
    my $f = q_at($db, 'SELECT name, checksum, module_version FROM octo_webhooks.schema_functions ORDER BY name');
    return [ $m, $f ];
}

sub diff_text {
    my ($a, $b) = @_;
    my @a = split /\n/, $a;
    my @b = split /\n/, $b;
    my @out;
    for my $i (0 .. ($#a > $#b ? $#a : $#b)) {
        my ($x, $y) = ($a[$i] // '', $b[$i] // '');
        next if $x eq $y;
        push @out, "line $i:\n- $x\n+ $y";
        last if @out > 10;
    }
    return join("\n", @out);
}

my $fresh = new_database();
migrate_with_module($fresh);
my $want = schema_dump($fresh);
like($want, qr/CREATE FUNCTION octo_webhooks\.claim/, 'a fresh install has the functions');
my $book = bookkeeping($fresh);
my @migrations = glob("$ENV{OWH_SRCDIR}/sql/[0-9]*.sql");
is(scalar @{ $book->[0] }, scalar @migrations, scalar(@migrations) . ' migrations recorded');
ok(!grep({ $_->[2] !~ /^[0-9a-f]{64}$/ } @{ $book->[0] }), 'each with its SHA-256');
my @function_files = glob("$ENV{OWH_SRCDIR}/sql/functions/*.sql");
cmp_ok(scalar @function_files, '>=', 16, 'the function files are there');
is(scalar @{ $book->[1] }, scalar @function_files, 'one function recorded per file in sql/functions');

for my $release (qw(first v003 ac89444)) {
    my $db = new_database();
    load_release($db, $release);
    # data written by that release survives and is migrated
    q_at($db, q{INSERT INTO octo_webhooks.connections (id) VALUES ('c1')});
    q_at($db, q{INSERT INTO octo_webhooks.webhooks (connection_id, event, event_type, url, url_display)
                VALUES ('c1', 'booking_update', 'booking_update', 'http://127.0.0.1:9/x', 'http://127.0.0.1:9/x')});
    q_at($db, q{DO $$ BEGIN IF to_regclass('octo_webhooks.events') IS NOT NULL THEN
                  INSERT INTO octo_webhooks.events (event_type, object_key, object) VALUES ('booking_update', 'b-old', '{}');
                END IF; END $$});
    migrate_with_module($db);
    my $got = schema_dump($db);
    ok($got eq $want, "$release: upgraded schema equals a fresh install (pg_dump -s)")
        or diag(diff_text($want, $got));
    is_deeply(bookkeeping($db)->[0], $book->[0], "$release: the same migrations and checksums");
    is_deeply([ map { [ $_->[0], $_->[1] ] } @{ bookkeeping($db)->[1] } ],
              [ map { [ $_->[0], $_->[1] ] } @{ $book->[1] } ], "$release: the same functions and checksums");
    is_deeply(q_at($db, 'SELECT event_types::text, dialect FROM octo_webhooks.webhooks'),
              [ [ '{booking_update}', 'octo' ] ], "$release: the old webhook got its types");
    is(q_at($db, q{SELECT count(*) FROM octo_webhooks.events WHERE NOT routed})->[0][0], 0,
       "$release: its events count as routed (its emit() made their deliveries)");
    my $ev = emit($db, 'booking_update', { uuid => 'b-1', status => 'CONFIRMED' }, 'c1');
    q_at($db, 'SELECT events FROM octo_webhooks.fanout(10)');     # a dispatcher's claim routes it
    is(q_at($db, 'SELECT count(*) FROM octo_webhooks.deliveries WHERE event_id = $1', $ev)->[0][0], 1,
       "$release: emit() and routing reach it");
}

# ---- refusals ----------------------------------------------------------------
{
    my $db = new_database();
    migrate_with_module($db);
    q_at($db, q{INSERT INTO octo_webhooks.schema_migrations (version, name, checksum) VALUES (999, '999_future', 'x')});
    my $log = refused($db);
    like($log, qr/schema octo_webhooks is at migration 999, newer than this module \(mod_octo_webhooks [\d.]+ knows migrations up to ${\ scalar @migrations}\)/,
         'a newer schema is refused, naming both versions') or diag($log);
    q_at($db, 'DELETE FROM octo_webhooks.schema_migrations WHERE version = 999');
    q_at($db, q{UPDATE octo_webhooks.schema_functions SET module_version = '999.0' WHERE name = 'claim'});
    $log = refused($db);
    like($log, qr/function octo_webhooks\.claim\(\) was installed by mod_octo_webhooks 999\.0, newer than this module/,
         'functions of a newer module are refused, not undone') or diag($log);
    q_at($db, q{UPDATE octo_webhooks.schema_functions SET module_version = '0.0.1' WHERE name = 'claim'});
    q_at($db, q{UPDATE octo_webhooks.schema_migrations SET checksum = repeat('0', 64) WHERE version = 2});
    $log = refused($db);
    like($log, qr/migration 2 was changed after it was applied .*frozen/, 'a changed migration is refused') or diag($log);
}

# ---- functions follow their files ------------------------------------------------
{
    my $db = new_database();
    migrate_with_module($db);
    # an edited function, a stale overload of it, one no longer shipped
    q_at($db, q{CREATE OR REPLACE FUNCTION octo_webhooks.iso(t timestamptz) RETURNS text LANGUAGE sql AS $$ SELECT 'old' $$});
    q_at($db, q{CREATE FUNCTION octo_webhooks.iso(t text) RETURNS text LANGUAGE sql AS $$ SELECT 'stale' $$});
    q_at($db, q{UPDATE octo_webhooks.schema_functions SET checksum = 'old' WHERE name = 'iso'});
    q_at($db, q{CREATE FUNCTION octo_webhooks.obsolete() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$});
    q_at($db, q{INSERT INTO octo_webhooks.schema_functions (name, checksum, module_version) VALUES ('obsolete', 'x', '0.0.1')});
    # a changed result type cannot be replaced in place: dropped and created
    q_at($db, q{DROP FUNCTION octo_webhooks.recover(uuid, text, timestamptz)});
    q_at($db, q{CREATE FUNCTION octo_webhooks.recover(p_webhook uuid, p_connection text, p_since timestamptz)
                RETURNS text LANGUAGE sql AS $$ SELECT 'old' $$});
    q_at($db, q{UPDATE octo_webhooks.schema_functions SET checksum = 'old' WHERE name = 'recover'});
    migrate_with_module($db);
    like(q_at($db, q{SELECT octo_webhooks.iso('2026-01-02 03:04:05+00')})->[0][0], qr/^2026-01-02T03:04:05\.000Z$/,
         'a changed function is re-created from its file');
    is(q_at($db, q{SELECT count(*) FROM pg_proc WHERE proname = 'iso' AND pronamespace = 'octo_webhooks'::regnamespace})->[0][0],
       1, 'its overload the file does not define is dropped');
    is(q_at($db, q{SELECT count(*) FROM pg_proc WHERE proname = 'obsolete'})->[0][0], 0, 'a function no longer shipped is dropped');
    is(q_at($db, q{SELECT count(*) FROM octo_webhooks.schema_functions WHERE name = 'obsolete'})->[0][0], 0, '... and forgotten');
    is(q_at($db, q{SELECT pg_get_function_result('octo_webhooks.recover(uuid, text, timestamptz)'::regprocedure)})->[0][0],
       'integer', 'a function whose result type changed is dropped and created');
    ok(schema_dump($db) eq $want, 'the schema equals a fresh install again');
}

# ---- OctoWebhooksMigrate Off ---------------------------------------------------------
{
    my $db = new_database();
    load_release($db, 'ac89444');
    my $log = refused($db, 'OctoWebhooksMigrate Off');
    like($log, qr/older than mod_octo_webhooks \S+ understands \(at migration 4 of ${\ scalar @migrations}; ${\ (@migrations - 4)} migration\(s\) pending.*run `octo-webhooks migrate` as the schema's owner/,
         'Migrate Off: an old schema is refused, naming the command') or diag($log);
    is(q_at($db, 'SELECT max(version) FROM octo_webhooks.schema_migrations')->[0][0], 4, '... and left as it was');
    # one database, one Migrate setting: refused when the configuration is read
    my $hc = start_httpd(conninfo => $db, start => 0, directives =>
                         "OctoWebhooksDispatcher Off\n<VirtualHost 127.0.0.1:1>\nOctoWebhooksMigrate Off\n</VirtualHost>");
    $log = `$HTTPD -t -f @{[ $hc->conf ]} 2>&1`;
    like($log, qr/name the same OctoWebhooksDatabase but differ in OctoWebhooksMigrate/,
         'two servers on one database must agree on Migrate') or diag($log);
    migrate_with_module($db);
    my $h = start_httpd(conninfo => $db, directives => "OctoWebhooksDispatcher Off\nOctoWebhooksMigrate Off");
    is(api('GET', '/webhooks', base => $h->base)->{code}, 401, 'Migrate Off: a current schema is served');
    $h->stop;
}
done_testing();
