"""Seed-article baseline: daphne + channels_redis RedisChannelLayer + Celery, as the seed wrote it."""
