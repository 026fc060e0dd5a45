#!/usr/bin/env python3
"""List latency with many task-definition revisions, through boto3.

Usage: start berth (`berth up --data-dir D --listen 127.0.0.1:PORT`), then
  python3 bench/taskdef_list.py D http://127.0.0.1:PORT [REVISIONS]
Registers REVISIONS (default 2000) revisions over 20 families (3 containers
x 20 environment variables each), then times ListTaskDefinitions: the first
page three times, and a full paginated listing.
"""
import os
import sys
import time

import boto3

data, endpoint = sys.argv[1], sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
os.environ.update(AWS_SHARED_CREDENTIALS_FILE=os.path.join(data, "credentials"),
                  AWS_CONFIG_FILE=os.path.join(data, "config"), AWS_PROFILE="berth")
c = boto3.client("ecs", endpoint_url=endpoint, region_name="us-east-1")
env = [{"name": "V%d" % i, "value": "x" * 40} for i in range(20)]
cds = [{"name": "c%d" % j, "image": "img:%d" % j, "memory": 64, "environment": env} for j in range(3)]
t0 = time.time()
for i in range(count):
    c.register_task_definition(family="fam%d" % (i % 20), containerDefinitions=cds)
print("register %d: %.1fs" % (count, time.time() - t0))
for _ in range(3):
    t0 = time.time()
    c.list_task_definitions(maxResults=1)
    print("list first page: %.1f ms" % ((time.time() - t0) * 1000))
t0 = time.time()
n = sum(len(p["taskDefinitionArns"]) for p in c.get_paginator("list_task_definitions").paginate())
print("list all %d: %.2fs" % (n, time.time() - t0))
