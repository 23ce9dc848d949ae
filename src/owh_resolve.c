/* owh_resolve.c — resolve mode: the dispatcher fetches each distinct view of
 * an event's object (capabilities, Accept-Language) once from the supplier's
 * OCTO API, inside the same libcurl multi loop as the deliveries, records it
 * (octo_webhooks.resolved_states, where the next diff starts) and hands the
 * waiting jobs their view. A failed fetch is a failed attempt of each. */
#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_escape.h>
#include <apr_uri.h>

#include "owh_dispatch.h"
#include "owh_json.h"
#include "owh_diff.h"

/* The object of a fetch's answer: the object itself, or for availability the
 * item of the array whose id is the event's. */
static const char *fetched_object(fetch_t *f, const char *body, apr_size_t len, const char **perr)
{
    json_error_t jerr;
    json_t *j = owh_json_pool_own(json_loadb(body, len, 0, &jerr), f->pool), *item;
    size_t i;
    apr_size_t n;
    if (f->type == OWH_EVENT_AVAILABILITY && json_is_array(j)) {
        json_array_foreach(j, i, item) {
            const char *id = json_string_value(json_object_get(item, "id"));
            if (id && f->availability_id && !strcmp(id, f->availability_id))
                return owh_json_dump(item, &n, f->pool);
        }
        *perr = "the availability is not in the answer";
        return NULL;
    }
    if (!json_is_object(j)) {
        *perr = "the answer is not a JSON object";
        return NULL;
    }
    return owh_json_dump(j, &n, f->pool);
}

static int fetch_again(loop_t *L, fetch_t *f, const char *locale);

static void on_fetch_done(void *ctx, void *baton, const owh_transfer_result_t *res)
{
    loop_t *L = ctx;
    fetch_t *f = baton;
    const char *err = NULL, *detail = NULL, *object = NULL, *previous = NULL;
    owh_event_view_t *view = NULL;
    int i;

    apr_hash_set(L->fetches, f->key, APR_HASH_KEY_STRING, NULL);
    /* err is what resellers read in their attempt log: no URL, host, port
     * or transport detail of the supplier's systems (those go to our log). */
    if (res->error) {
        err = "the supplier's API did not answer";
        detail = res->error;
    }
    else if (res->status_code != 200) err = apr_psprintf(f->pool, "the supplier's API answered HTTP %d",
                                                        res->status_code);
    else if (res->truncated) err = apr_psprintf(f->pool, "the answer is over OctoWebhooksMaxPayloadSize (%"
                                                APR_SIZE_T_FMT " bytes)", L->sc->max_payload);
    else if ((object = fetched_object(f, res->excerpt, res->excerpt_len, &err))) {
        /* card payment details never reach resolved_states (nor any payload) */
        json_error_t jerr;
        json_t *o = owh_json_pool_own(json_loads(object, 0, &jerr), f->pool);
        apr_size_t n;
        if (o && owh_diff_strip_card_payments(o)) object = owh_json_dump(o, &n, f->pool);
    }
    if (!err && f->contact) {
        /* Accept-Language is the booking contact's: learnt from this answer */
        json_error_t jerr;
        const char *locale = owh_payload_contact_language(
            owh_json_pool_own(json_loads(object, 0, &jerr), f->pool), f->pool);
        if (locale && fetch_again(L, f, locale)) return;
    }
    /* The state this view was last sent at is where its diff starts (our
     * own statement: the round trip in flight ends first). */
    if (!err && f->type != OWH_EVENT_AVAILABILITY) owh_dispatcher_db_idle(L);
    if (!err && f->type != OWH_EVENT_AVAILABILITY
        && (!L->db || owh_queue_view_state(L->db, f->state_key, f->event_id, object, &previous, f->pool)
                      != APR_SUCCESS))
        err = "the resolved object could not be recorded (database unavailable)";
    if (!err && !(view = owh_jobs_cache_view(L, f->key, owh_event_name(f->type), f->event_id, f->event_at, object,
                                    previous, f->language)))
        err = "the answer is not a JSON object";
    L->resolving -= f->waiters->nelts;
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, L->s, OWHLOGNO(00530)
                     "resolve: %s failed for %d deliveries: %s%s%s", f->what, f->waiters->nelts, err,
                     detail ? ": " : "", detail ? detail : "");
        err = apr_pstrcat(f->pool, "resolving the object: ", err, NULL);
    }
    for (i = 0; i < f->waiters->nelts; ++i) {
        job_t *j = APR_ARRAY_IDX(f->waiters, i, job_t *);
        if (err) owh_jobs_fail(L, j, err, res->started, res->latency_ms);
        else {
            owh_jobs_finish(L, j, view);
            owh_jobs_dispatch(L, j);
        }
    }
    apr_pool_destroy(f->pool);
}

/* A URL for the log: never its credentials. */
static const char *url_for_log(const char *url, apr_pool_t *p)
{
    apr_uri_t uri;
    if (apr_uri_parse(p, url, &uri) != APR_SUCCESS) return "(an unparsable URL)";
    return apr_uri_unparse(p, &uri, APR_URI_UNP_OMITUSERINFO);
}

/* Sends f's request: Accept, the supplier API token, the webhook's
 * Octo-Capabilities and f's Accept-Language. */
static apr_status_t fetch_send(loop_t *L, fetch_t *f)
{
    apr_pool_t *p;
    owh_request_t rq;
    owh_header_t *h;
    apr_array_header_t *headers;

    p = owh_dsp_pool(L->pool, "owh_dsp_fetch_request");  /* owh_deliver_process destroys it after on_fetch_done */
    headers = apr_array_make(p, 4, sizeof(owh_header_t));

    f->what = apr_pstrcat(f->pool, f->method, " ", url_for_log(f->url, f->pool), NULL);
    h = &APR_ARRAY_PUSH(headers, owh_header_t);
    h->name = "Accept";
    h->value = "application/json";
    if (L->sc->supplier_api_token) {
        h = &APR_ARRAY_PUSH(headers, owh_header_t);
        h->name = "Authorization";
        h->value = apr_pstrcat(p, "Bearer ", L->sc->supplier_api_token, NULL);
    }
    if (*f->caps) {
        h = &APR_ARRAY_PUSH(headers, owh_header_t);
        h->name = "Octo-Capabilities";
        h->value = f->caps;
    }
    if (f->language) {
        h = &APR_ARRAY_PUSH(headers, owh_header_t);
        h->name = "Accept-Language";
        h->value = f->language;
    }
    memset(&rq, 0, sizeof(rq));
    rq.method = f->method;
    rq.url = f->url;
    rq.body = f->body;
    rq.len = f->len;
    rq.headers = headers;
    rq.response_cap = L->sc->max_payload;
    rq.trusted = 1;                     /* the configuration's URL, not a reseller's */
    rq.done = on_fetch_done;
    if (owh_deliver_request(L->deliver, &rq, f, p) != APR_SUCCESS) {
        apr_pool_destroy(p);
        return APR_EGENERAL;
    }
    apr_hash_set(L->fetches, f->key, APR_HASH_KEY_STRING, f);
    return APR_SUCCESS;
}

/* Starts the fetch of j's view from the supplier's API: GET /bookings/{uuid},
 * /orders/{id}, /products/{id}, or POST /availability. */
static apr_status_t fetch_start(loop_t *L, job_t *j, fetch_t **pf, const char **perr)
{
    apr_pool_t *p;
    fetch_t *f;
    json_error_t jerr;
    json_t *thin;
    const char *lang = owh_jobs_language(j->job, j->wh), *id;
    apr_size_t n;

    p = owh_dsp_pool(L->pool, "owh_dsp_fetch");
    f = apr_pcalloc(p, sizeof(*f));
    f->pool = p;
    f->key = apr_pstrdup(p, j->view_key);
    f->type = owh_event_parse(j->job->event_type);
    f->event_id = apr_pstrdup(p, j->job->event_id);
    f->event_at = apr_pstrdup(p, j->job->event_at);
    f->caps = owh_jobs_caps(j->wh, p);
    f->contact = !strcmp(lang, CONTACT_LANGUAGE);
    f->language = *lang && !f->contact ? apr_pstrdup(p, lang) : NULL;
    f->state_key = apr_pstrcat(p, j->job->event_type, "/", j->job->object_key, "|", f->caps, "|", lang, NULL);
    f->waiters = apr_array_make(p, 4, sizeof(job_t *));
    f->method = "GET";
    thin = owh_json_pool_own(json_loads(j->job->object_json, 0, &jerr), p);
    id = apr_pescape_path_segment(p, j->job->object_key);
    switch (f->type) {
    case OWH_EVENT_BOOKING: f->url = apr_pstrcat(p, L->sc->supplier_api, "/bookings/", id, NULL); break;
    case OWH_EVENT_ORDER: f->url = apr_pstrcat(p, L->sc->supplier_api, "/orders/", id, NULL); break;
    case OWH_EVENT_PRODUCT: f->url = apr_pstrcat(p, L->sc->supplier_api, "/products/", id, NULL); break;
    case OWH_EVENT_AVAILABILITY:
        f->availability_id = apr_pstrdup(p, json_string_value(json_object_get(thin, "id")));
        if (!f->availability_id || !json_is_string(json_object_get(thin, "productId"))
            || !json_is_string(json_object_get(thin, "optionId"))) {
            *perr = "resolving an availability needs its id, productId and optionId (strings) in the event";
            apr_pool_destroy(p);
            return APR_EINVAL;
        }
        f->method = "POST";
        f->url = apr_pstrcat(p, L->sc->supplier_api, "/availability", NULL);
        f->body = owh_json_dump(owh_json_pool_own(json_pack("{s:O, s:O, s:[s]}",
            "productId", json_object_get(thin, "productId"), "optionId", json_object_get(thin, "optionId"),
            "availabilityIds", f->availability_id), p), &n, p);
        f->len = n;
        break;
    default:
        *perr = "the event cannot be resolved";
        apr_pool_destroy(p);
        return APR_EINVAL;
    }
    if (fetch_send(L, f) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, L->s, OWHLOGNO(00531)
                     "resolve: %s %s: the request could not be prepared", f->method, url_for_log(f->url, p));
        *perr = "resolving the object: the request to the supplier's API could not be prepared";
        apr_pool_destroy(p);
        return APR_EGENERAL;
    }
    *pf = f;
    return APR_SUCCESS;
}

/* The first fetch of a "@contact" view told the contact's locale: the same
 * fetch again in that language, for the same waiters. 1 if under way. */
static int fetch_again(loop_t *L, fetch_t *f, const char *locale)
{
    f->contact = 0;
    f->language = apr_pstrdup(f->pool, locale);
    return fetch_send(L, f) == APR_SUCCESS;
}

/* Parks j on the fetch of its view, starting the fetch if none is running. */
void owh_resolve_attach(loop_t *L, job_t *j)
{
    fetch_t *f = apr_hash_get(L->fetches, j->view_key, APR_HASH_KEY_STRING);
    const char *err = NULL;
    if (!f && fetch_start(L, j, &f, &err) != APR_SUCCESS) {
        owh_jobs_fail(L, j, err, apr_time_now(), 0);
        return;
    }
    APR_ARRAY_PUSH(f->waiters, job_t *) = j;
    L->resolving++;
}

