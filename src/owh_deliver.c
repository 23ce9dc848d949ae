/* owh_deliver.c — libcurl multi transfers. See owh_deliver.h. */
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_date.h>
#include <curl/curl.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "owh_deliver.h"
#include "owh_netguard.h"
#include "owh_webhook.h"

/* Two connection caches, never mixed: deliveries (to endpoints resellers
 * name, each connection opened through the SSRF guard) use the multi
 * handle's; trusted fetches (the supplier's own API, resolve mode) use the
 * share's. Both run in the one multi handle, so one wait drives them all,
 * and a fetch's warm connection is never lent to a reseller's POST however
 * its URL names the host. */
struct owh_deliver_t {
    apr_pool_t *pool;
    CURLM *multi;
    CURLSH *trusted_share;      /* the trusted transfers' connection cache */
    owh_deliver_params_t params;
    int running;
};

typedef struct transfer_t {
    owh_deliver_t *d;
    apr_pool_t *pool;
    CURL *easy;
    CURLU *url;
    struct curl_slist *headers;
    void *baton;
    owh_deliver_done_fn *done;
    int trusted;
    char *resp;
    apr_size_t resp_len, resp_cap;
    apr_time_t started;
    const char *refused;        /* why the guard refused the connect */
    const char *retry_after;    /* of the final response */
    char errbuf[CURL_ERROR_SIZE];
} transfer_t;

apr_status_t owh_deliver_create(owh_deliver_t **pd, const owh_deliver_params_t *params, apr_pool_t *p)
{
    owh_deliver_t *d = apr_pcalloc(p, sizeof(*d));
    d->pool = p;
    d->params = *params;
    /* Registered first, so cleaned after the multi handle (cleanups run in
     * reverse): the share may not go while a handle still uses it. */
    if (!(d->trusted_share = curl_share_init())) return APR_ENOMEM;
    apr_pool_cleanup_register(p, d->trusted_share, (apr_status_t (*)(void *))curl_share_cleanup,
                              apr_pool_cleanup_null);
    if (curl_share_setopt(d->trusted_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK)
        return APR_ENOTIMPL;
    if (!(d->multi = curl_multi_init())) return APR_ENOMEM;
    apr_pool_cleanup_register(p, d->multi, (apr_status_t (*)(void *))curl_multi_cleanup,
                              apr_pool_cleanup_null);
    curl_multi_setopt(d->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)params->max_per_host);
    /* Keep connections to busy receivers open across deliveries. */
    curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, 512L);
    *pd = d;
    return APR_SUCCESS;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    transfer_t *t = userp;
    size_t n = size * nmemb, cap = t->resp_cap;
    /* Keep the head, drop the rest without failing the transfer. */
    if (t->resp_len < cap) {
        size_t take = n < cap - t->resp_len ? n : cap - t->resp_len;
        memcpy(t->resp + t->resp_len, data, take);
        t->resp_len += take;
    }
    return n;
}

/* Keeps Retry-After of the final response (a status line starts over). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    transfer_t *t = userp;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n >= 5 && !strncmp(data, "HTTP/", 5)) t->retry_after = NULL;
    else if (n > sizeof(name) - 1 && n < 256 && !strncasecmp(data, name, sizeof(name) - 1)) {
        const char *v = data + sizeof(name) - 1, *end = data + n;
        while (v < end && (*v == ' ' || *v == '\t')) ++v;
        while (end > v && apr_isspace(end[-1])) --end;
        t->retry_after = apr_pstrndup(t->pool, v, end - v);
    }
    return n;
}

/* Every socket libcurl opens passes the SSRF guard with the address it is
 * about to connect to: what DNS said at connect time is what is judged. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    transfer_t *t = clientp;
    const char *why = t->trusted ? NULL : owh_netguard_check(t->d->params.guard, &a->addr);
    if (why) {
        char host[INET6_ADDRSTRLEN] = "?";
        if (a->family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&a->addr)->sin_addr, host, sizeof(host));
        else if (a->family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a->addr)->sin6_addr, host, sizeof(host));
        t->refused = apr_psprintf(t->pool, "refused by the SSRF guard: %s is %s "
                                  "(see OctoWebhooksAllowNetworks)", host, why);
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

#if LIBCURL_VERSION_NUM >= 0x075000
/* Runs once the connection a delivery will use is ready, new or reused, just
 * before the request is sent: the peer must pass the guard here too, so no
 * connection, however it got into the cache, carries a reseller's request to
 * a forbidden address. */
static int before_request(void *clientp, char *peer_ip, char *local_ip, int peer_port, int local_port)
{
    transfer_t *t = clientp;
    struct sockaddr_storage ss;
    const char *why;
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, peer_ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, peer_ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    why = owh_netguard_check(t->d->params.guard, (struct sockaddr *)&ss);
    if (!why) return CURL_PREREQFUNC_OK;
    t->refused = apr_psprintf(t->pool, "refused by the SSRF guard: %s is %s "
                              "(see OctoWebhooksAllowNetworks)", peer_ip, why);
    return CURL_PREREQFUNC_ABORT;
}
#endif

static apr_status_t transfer_cleanup(void *data)
{
    transfer_t *t = data;
    if (t->easy) {
        curl_multi_remove_handle(t->d->multi, t->easy);
        curl_easy_cleanup(t->easy);
        t->easy = NULL;
    }
    if (t->url) { curl_url_cleanup(t->url); t->url = NULL; }
    if (t->headers) { curl_slist_free_all(t->headers); t->headers = NULL; }
    return APR_SUCCESS;
}

/* Moves user:password out of the URL into Basic auth options. */
static apr_status_t split_credentials(transfer_t *t, const char *url)
{
    char *user = NULL, *pass = NULL;
    if (!(t->url = curl_url())) return APR_ENOMEM;
    if (curl_url_set(t->url, CURLUPART_URL, url, 0) != CURLUE_OK) return APR_EINVAL;
    if (curl_url_get(t->url, CURLUPART_USER, &user, CURLU_URLDECODE) == CURLUE_OK && user) {
        curl_url_get(t->url, CURLUPART_PASSWORD, &pass, CURLU_URLDECODE);
        curl_easy_setopt(t->easy, CURLOPT_USERNAME, user);
        curl_easy_setopt(t->easy, CURLOPT_PASSWORD, pass ? pass : "");
        curl_easy_setopt(t->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_url_set(t->url, CURLUPART_USER, NULL, 0);
        curl_url_set(t->url, CURLUPART_PASSWORD, NULL, 0);
        curl_free(user);
        if (pass) curl_free(pass);
    }
    curl_easy_setopt(t->easy, CURLOPT_CURLU, t->url);
    return APR_SUCCESS;
}

apr_status_t owh_deliver_start(owh_deliver_t *d, const char *url, const apr_array_header_t *headers,
                               const char *body, apr_size_t len, void *baton, apr_pool_t *tpool)
{
    owh_request_t rq;
    memset(&rq, 0, sizeof(rq));
    rq.method = "POST";
    rq.url = url;
    rq.headers = headers;
    rq.body = body;
    rq.len = len;
    return owh_deliver_request(d, &rq, baton, tpool);
}

apr_status_t owh_deliver_request(owh_deliver_t *d, const owh_request_t *rq, void *baton, apr_pool_t *tpool)
{
    transfer_t *t = apr_pcalloc(tpool, sizeof(*t));
    const apr_array_header_t *headers = rq->headers;
    int post = !strcmp(rq->method, "POST");
    apr_status_t rv;
    int i;

    t->d = d;
    t->pool = tpool;
    t->baton = baton;
    t->done = rq->done;
    t->trusted = rq->trusted;
    t->resp_cap = rq->response_cap ? rq->response_cap : d->params.response_cap;
    t->resp = apr_palloc(tpool, t->resp_cap + 1);
    apr_pool_cleanup_register(tpool, t, transfer_cleanup, apr_pool_cleanup_null);
    if (!(t->easy = curl_easy_init())) return APR_ENOMEM;
    if ((rv = split_credentials(t, rq->url)) != APR_SUCCESS) return rv;

    if (post) {
        t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
        t->headers = curl_slist_append(t->headers, "Expect:");   /* no 100-continue round trip */
    }
    for (i = 0; headers && i < headers->nelts; ++i) {
        const owh_header_t *h = &APR_ARRAY_IDX(headers, i, owh_header_t);
        /* "Name;" is curl's way of sending a header with an empty value. */
        t->headers = curl_slist_append(t->headers, *h->value
            ? apr_pstrcat(tpool, h->name, ": ", h->value, NULL)
            : apr_pstrcat(tpool, h->name, ";", NULL));
    }
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
    if (post) {
        curl_easy_setopt(t->easy, CURLOPT_POST, 1L);
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->len);
    }
    else curl_easy_setopt(t->easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(t->easy, CURLOPT_PROXY, "");            /* ignore *_proxy variables */
    curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(d->params.connect_timeout / 1000));
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)(d->params.timeout / 1000));
    curl_easy_setopt(t->easy, CURLOPT_USERAGENT, d->params.user_agent);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(t->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(t->easy, CURLOPT_OPENSOCKETDATA, t);
    if (t->trusted)
        curl_easy_setopt(t->easy, CURLOPT_SHARE, d->trusted_share);
#if LIBCURL_VERSION_NUM >= 0x075000
    else {
        curl_easy_setopt(t->easy, CURLOPT_PREREQFUNCTION, before_request);
        curl_easy_setopt(t->easy, CURLOPT_PREREQDATA, t);
    }
#endif
    t->started = apr_time_now();
    if (curl_multi_add_handle(d->multi, t->easy) != CURLM_OK) return APR_EGENERAL;
    d->running++;
    return APR_SUCCESS;
}

int owh_deliver_running(owh_deliver_t *d)
{
    return d->running;
}

apr_status_t owh_deliver_wait(owh_deliver_t *d, const int *fds, int nfds, int timeout_ms, int *ready)
{
    struct curl_waitfd wfd[2];
    int i, k = 0, n = 0;
    CURLMcode mc;
    for (i = 0; i < nfds && i < 2; ++i) {
        ready[i] = 0;
        if (fds[i] < 0) continue;
        wfd[k].fd = fds[i];
        wfd[k].events = CURL_WAIT_POLLIN;
        wfd[k].revents = 0;
        k++;
    }
    mc = curl_multi_poll(d->multi, k ? wfd : NULL, (unsigned)k, timeout_ms, &n);
    for (i = 0, k = 0; i < nfds && i < 2; ++i)
        if (fds[i] >= 0) ready[i] = (wfd[k++].revents & CURL_WAIT_POLLIN) != 0;
    return mc == CURLM_OK ? APR_SUCCESS : APR_EGENERAL;
}

void owh_deliver_process(owh_deliver_t *d, owh_deliver_done_fn *done, void *ctx)
{
    int still = 0, left = 0;
    CURLMsg *msg;
    curl_multi_perform(d->multi, &still);
    while ((msg = curl_multi_info_read(d->multi, &left))) {
        transfer_t *t = NULL;
        owh_transfer_result_t res;
        long code = 0;
        curl_off_t total = 0;
        if (msg->msg != CURLMSG_DONE) continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_TOTAL_TIME_T, &total);
        memset(&res, 0, sizeof(res));
        res.status_code = (int)code;
        res.started = t->started;
        res.latency_ms = (int)(total / 1000);
        t->resp[t->resp_len] = '\0';
        res.excerpt = t->resp;
        res.excerpt_len = t->resp_len;
        res.retry_after = t->retry_after;
        if (t->refused && msg->data.result != CURLE_OK)
            res.error = t->refused;
        else if (msg->data.result != CURLE_OK)
            res.error = apr_pstrdup(t->pool, *t->errbuf ? t->errbuf : curl_easy_strerror(msg->data.result));
        res.truncated = t->resp_len >= t->resp_cap;
        d->running--;
        (t->done ? t->done : done)(ctx, t->baton, &res);
        apr_pool_destroy(t->pool);      /* removes and frees the easy handle */
    }
}
