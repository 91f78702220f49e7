"""AI generation: a request becomes jobs; a job makes 1–4 images with FLUX and ends completed or failed.

    requests.py   the API's side: start one job or several (all or nothing), retry, cancel, read
    quota.py      images per day and jobs at once: charged at start, given back for our failures
    jobs.py       the job lifecycle, the only writer of a job's status: claim, record, release,
                  hand on, settle, dead-letter, expire, requeue (docs/architecture.md has the state table)
    store.py      the jobs' and Idempotency-Keys' data access: every read and write of them, by name
    worker.py     one delivery of a job message: time budget, provider → Pillow → safety, per image
    spec.py       image count, derived avatar ids, the job message     render.py  JSON of a job
    metrics.py    CloudWatch metrics of finished jobs (EMF)
    providers.py  FLUX.1-dev (+ realism LoRA) through huggingface_hub, or the offline renderer
    prompts.py    persona + attributes + the user's words → the text-to-image prompt
    content_policy.py  the policy on requests (English, Indonesian, obfuscations), before queuing;
                  its terms are data (data/content-policy.v2.json)
    safety.py     the image classifier on generated images

Modules are imported by name (`from chalicelib.generation import requests`), so the API never loads
the worker's code, and the worker never loads the request side.
"""
