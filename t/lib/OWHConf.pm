package OWHConf;
# The one httpd.conf generator for a private httpd with mod_octo_webhooks:
# bin/owh run, bench/run (both through build/httpd-conf), the delivery tests'
# instances (t/lib/OWHDelivery.pm) and t/config.t's `httpd -t` checks. What
# differs between them is an option; everything else is written once here.
# (The Apache::Test server's own configuration is t/conf/extra.conf.in.)
use strict;
use warnings;
use Exporter 'import';

our @EXPORT_OK = qw(httpd_conf write_httpd_conf);

my $MODS = '/usr/lib/apache2/modules';

# httpd_conf(%opt) -> the text of an httpd.conf.
#   root        ServerRoot (required)
#   run_dir     where the pid file, runtime files and mutexes go (root)
#   error_log   the error log (run_dir/error.log)
#   port        Listen 127.0.0.1:port (required)
#   log_level   LogLevel ("warn octo_webhooks:info")
#   user, group User/Group (when httpd starts as root)
#   modules     more of Debian's modules by short name, e.g. ['auth_basic']
#   module      mod_octo_webhooks.so ($OWH_SRCDIR/.libs/mod_octo_webhooks.so)
#   database    OctoWebhooksDatabase conninfo (none: not written)
#   allow       OctoWebhooksAllowNetworks value (none: the SSRF guard's default)
#   dispatcher  false: OctoWebhooksDispatcher Off (default on)
#   directives  more lines, a string or an array ref, written after the above
#   location    the handler's <Location> ('/octo'; undef or '': none)
#   ops         the operations handlers at /octo-metrics and /octo-status:
#               'all' (no access rule) or 'local' (loopback only, mod_authz_host)
#   comment     a first line saying who generated it
sub httpd_conf {
    my (%o) = @_;
    my $root = $o{root} // die "httpd_conf: root is required\n";
    defined $o{port} or die "httpd_conf: port is required\n";
    my $run = $o{run_dir} // $root;
    my $module = $o{module} // (defined $ENV{OWH_SRCDIR} ? "$ENV{OWH_SRCDIR}/.libs/mod_octo_webhooks.so"
                                                        : die "httpd_conf: module or OWH_SRCDIR is required\n");
    my $location = exists $o{location} ? $o{location} : '/octo';
    my $extra = $o{directives} // [];
    my @lines = (
        (defined $o{comment} ? "# $o{comment}" : ()),
        qq{ServerRoot "$root"}, 'ServerName 127.0.0.1', "Listen 127.0.0.1:$o{port}",
        qq{PidFile "$run/httpd.pid"}, qq{DefaultRuntimeDir "$run"}, "Mutex file:$run default",
        'ErrorLog "' . ($o{error_log} // "$run/error.log") . '"',
        'LogLevel ' . ($o{log_level} // 'warn octo_webhooks:info'),
        map({ "LoadModule ${_}_module $MODS/mod_$_.so" } 'mpm_event', 'authz_core',
            (($o{ops} // '') eq 'local' ? 'authz_host' : ()), @{ $o{modules} || [] }),
        qq{LoadModule octo_webhooks_module "$module"},
        (defined $o{user} ? "User $o{user}" : ()), (defined $o{group} ? "Group $o{group}" : ()),
        (defined $o{database} ? qq{OctoWebhooksDatabase "$o{database}"} : ()),
        (defined $o{allow} ? "OctoWebhooksAllowNetworks $o{allow}" : ()),
        ((exists $o{dispatcher} && !$o{dispatcher}) ? 'OctoWebhooksDispatcher Off' : ()),
        (ref $extra ? @$extra : split /\n/, $extra),
        (defined $location && length $location
            ? ("<Location $location>", '    SetHandler octo-webhooks', '</Location>') : ()),
        (map { my ($path, $handler) = @$_;
               ("<Location $path>", "    SetHandler $handler",
                (($o{ops} // '') eq 'local' ? '    Require ip 127.0.0.1 ::1' : ()), '</Location>') }
         $o{ops} ? (['/octo-metrics', 'octo-webhooks-metrics'], ['/octo-status', 'octo-webhooks-status']) : ()),
    );
    return join("\n", @lines, '');
}

# write_httpd_conf(path, %opt): httpd_conf written to path; returns path.
sub write_httpd_conf {
    my ($path, %o) = @_;
    open(my $fh, '>', $path) or die "$path: $!\n";
    print $fh httpd_conf(%o);
    close $fh or die "$path: $!\n";
    return $path;
}

1;
