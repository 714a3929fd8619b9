"""python manage.py generate SLUG --system NAME --strategy S --backend B --model M --user U: starts a
generation job through the same service as the web form and follows it with a progress bar.

With tasks in process (no REDIS_URL) the job runs inside this command; with Redis it runs on the
workers, and this command only watches. Exit status 1 when the job fails, is cancelled, or any
request failed; outputs that did not parse are reported but are not a failure.
"""
import threading
import time
from pathlib import Path

from celery import current_app
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connection, transaction
from django.http import Http404
from tqdm import tqdm

from annotations.studies.selectors import researcher_study
from generation import selectors, services
from generation.models import GenerationJob
from generation.strategies import ANSWER, STRATEGIES, THINK

FINISHED = {GenerationJob.Status.COMPLETED, GenerationJob.Status.FAILED,
            GenerationJob.Status.CANCELLED}


class Follower(threading.Thread):
    """Polls the job's rows and draws the bar, in a thread of its own: with tasks in process the
    command's own thread is busy running the job."""

    def __init__(self, job_id, *, interval, stream, show_bar, requeue):
        super().__init__(name="generate-follower", daemon=True)
        self.job_id, self.interval, self.requeue = job_id, interval, requeue
        self.stream, self.show_bar = stream, show_bar
        self.stopped = threading.Event()
        self.failure = None

    def run(self):
        bar = None
        try:
            while True:
                job = GenerationJob.objects.filter(id=self.job_id).first()
                if job is not None:  # None until the transaction that starts it commits
                    if self.requeue:
                        services.enqueue_waiting(job)  # as the job's page does while Redis is down
                    progress = selectors.job_progress(job)
                    if bar is None:
                        bar = tqdm(total=progress.total, unit="item", file=self.stream,
                                   disable=not self.show_bar, dynamic_ncols=True)
                    bar.set_description_str(job.get_status_display())
                    bar.set_postfix_str(f"{progress.done} done, {progress.unparsed} unparsed, "
                                        f"{progress.failed} failed"
                                        + (f", {progress.tokens_per_s:.1f} tok/s"
                                           if progress.tokens_per_s else ""), refresh=False)
                    bar.update(progress.finished - bar.n)
                    if job.status in FINISHED:
                        return
                if self.stopped.wait(self.interval):
                    return
        except Exception as exc:  # shown by the command, which then exits 1
            self.failure = exc
        finally:
            if bar is not None:
                bar.close()
            connection.close()


class Command(BaseCommand):
    help = ("Start a generation job for a study (a new system's responses from a model and a "
            "prompting strategy) and follow its progress.")

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the study's slug")
        parser.add_argument("--system", required=True, help="the new system's name")
        parser.add_argument("--strategy", required=True, choices=list(STRATEGIES))
        parser.add_argument("--backend", default=GenerationJob.Backend.VLLM,
                            choices=GenerationJob.Backend.values)
        parser.add_argument("--model", required=True,
                            help="the served model name (vllm), or a local path or Hugging Face "
                                 "name (transformers: a checkpoint folder or a .gguf file)")
        parser.add_argument("--user", required=True,
                            help="the researcher who starts the job (must research the study)")
        parser.add_argument("--temperature", type=float, default=0.7)
        parser.add_argument("--top-p", type=float, default=1.0)
        parser.add_argument("--max-tokens", type=int, default=1024)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--template-file", type=Path,
                            help="the custom strategy's prompt, with {post} where the post goes")
        parser.add_argument("--reasoning-open", default=THINK[0])
        parser.add_argument("--reasoning-close", default=THINK[1])
        parser.add_argument("--answer-open", default=ANSWER[0])
        parser.add_argument("--answer-close", default=ANSWER[1])
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
        parser.add_argument("--no-progress", action="store_true",
                            help="no progress bar (the summary is still printed)")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"no user {options['user']!r}")
        try:
            study = researcher_study(user, options["slug"])
        except Http404:
            raise CommandError(f"no study {options['slug']!r} that {user.username} researches") \
                from None
        eager = bool(current_app.conf.task_always_eager)
        follower = None
        try:
            with transaction.atomic():
                job = services.start_job(study, user=user, **self._job_options(options))
                follower = Follower(job.id, interval=options["interval"], stream=self.stderr,
                                    show_bar=not options["no_progress"], requeue=not eager)
                follower.start()
            # With tasks in process the job ran as this transaction committed; otherwise the
            # workers run it while the follower watches.
            while follower.is_alive():
                follower.join(0.2)
        except services.JobInvalid as exc:
            raise CommandError("the job cannot start:\n" + "\n".join(
                f"  {field if field != '__all__' else 'job'}: {message}"
                for field, message in exc.errors.items())) from None
        except KeyboardInterrupt:
            if follower is not None:
                follower.stopped.set()
                follower.join(5)
            if job_id := getattr(follower, "job_id", None):
                close_old_connections()
                job = GenerationJob.objects.get(id=job_id)
                if eager and job.status in (GenerationJob.Status.QUEUED,
                                            GenerationJob.Status.RUNNING):
                    # Nothing else would ever finish it: its chunks ran in this process.
                    services.cancel_job(job)
                    raise CommandError(f"interrupted: job {job.id} cancelled; resume it from its "
                                       f"page") from None
                raise CommandError(f"stopped following job {job.id}; it is {job.status} on the "
                                   f"workers") from None
            raise CommandError("interrupted") from None
        if follower.failure is not None:
            raise CommandError(f"following the job failed: {follower.failure}")
        job.refresh_from_db()
        self._report(job)

    def _job_options(self, options):
        strategy_options = {}
        if options["strategy"] == "custom":
            if not options["template_file"]:
                raise CommandError("the custom strategy needs --template-file")
            strategy_options = {
                "template": options["template_file"].read_text(encoding="utf-8"),
                **{name: options[name] for name in ("reasoning_open", "reasoning_close",
                                                    "answer_open", "answer_close")},
            }
        return {"system_name": options["system"], "backend": options["backend"],
                "model": options["model"], "strategy": options["strategy"],
                "strategy_options": strategy_options, "temperature": options["temperature"],
                "top_p": options["top_p"], "max_tokens": options["max_tokens"],
                "seed": options["seed"]}

    def _report(self, job):
        progress, stats = selectors.job_progress(job), selectors.job_stats(job)
        self.stdout.write(f"Job {job.id} {job.status}: system {job.system.name!r}, "
                          f"{progress.done} of {progress.total} items with a response, "
                          f"{progress.unparsed} unparsed, {progress.failed} failed, "
                          f"{progress.pending} pending.")
        if stats.outputs:
            wall = f"{stats.wall_seconds:.1f} s" if stats.wall_seconds is not None else "?"
            self.stdout.write(
                f"Parsed {stats.parsed} of {stats.outputs} outputs ({stats.parse_rate:.0%}); "
                f"tokens in {stats.prompt_tokens}, out {stats.completion_tokens}; "
                f"{wall} from start to finish, {stats.request_seconds:.1f} s of requests.")
        reasons = {}
        for failure in selectors.job_failures(job):
            reasons.setdefault((failure.status, failure.error), 0)
            reasons[(failure.status, failure.error)] += 1
        for (status, error), count in sorted(reasons.items(), key=lambda kv: -kv[1])[:5]:
            self.stdout.write(f"  {count} {status}: {error}")
        if job.status == GenerationJob.Status.FAILED:
            raise CommandError(f"job {job.id} failed: {job.error}")
        if job.status == GenerationJob.Status.CANCELLED:
            raise CommandError(f"job {job.id} was cancelled")
        if progress.failed:
            raise CommandError(f"{progress.failed} of the job's requests failed")
