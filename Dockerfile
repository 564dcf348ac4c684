# syntax=docker/dockerfile:1
# Multi-stage: the API image on plain Node, the worker image on CUDA 11.2 + cuDNN 8
# (what @tensorflow/tfjs-node-gpu 4.x links against). Not buildable on the dev
# machines (no Docker engine, no libtensorflow download): kept small and checked by review.

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Optional native backends are skipped here; the worker stage installs tfjs-node-gpu.
RUN npm ci --omit=optional --no-audit --no-fund

FROM node:20-bookworm-slim AS api
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 DATA_DIR=/data WORKERS=0
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src ./src
COPY workers ./workers
EXPOSE 8080
USER node
CMD ["node", "--import", "tsx", "src/server.ts"]

FROM nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04 AS worker
ARG NODE_MAJOR=20
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates python3 make g++ \
 && curl -fsSL https://deb.nodesource.com/setup_${NODE_MAJOR}.x | bash - \
 && apt-get install -y --no-install-recommends nodejs && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# Installs @tensorflow/tfjs-node-gpu (optionalDependencies), which downloads libtensorflow (GPU).
RUN npm ci --no-audit --no-fund --foreground-scripts && npm rebuild @tensorflow/tfjs-node-gpu
COPY tsconfig.json ./
COPY src ./src
COPY workers ./workers
ENV NODE_ENV=production DATA_DIR=/data TF_BACKEND=tensorflow-gpu
CMD ["node", "--import", "tsx", "workers/worker.ts"]
