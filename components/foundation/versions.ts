// Every chart and image this layer installs, pinned. Traefik and ServiceLB are K3s's own: their versions are
// pinned by the K3s release (peoples-cloud:k3s.version) and their images ship in its air-gap archive.
import type { PinnedChart, PinnedImage } from "../../lib/kube";

const certManagerVersion = "v1.19.6";
const certManagerImage = (component: string): PinnedImage => ({
    repository: `quay.io/jetstack/cert-manager-${component}`,
    tag: certManagerVersion,
});

export const certManager = {
    chart: {
        repo: "https://charts.jetstack.io",
        chart: "cert-manager",
        version: certManagerVersion,
        namespace: "cert-manager",
    } satisfies PinnedChart,
    images: {
        controller: certManagerImage("controller"),
        webhook: certManagerImage("webhook"),
        cainjector: certManagerImage("cainjector"),
        acmesolver: certManagerImage("acmesolver"),
        startupapicheck: certManagerImage("startupapicheck"),
    },
};

/** ServiceMonitor, PodMonitor, PrometheusRule and the operator's other CRDs (operator v0.87.1); no workload. */
export const prometheusOperatorCrds = {
    chart: {
        repo: "https://prometheus-community.github.io/helm-charts",
        chart: "prometheus-operator-crds",
        version: "25.0.1",
        namespace: "monitoring",
    } satisfies PinnedChart,
};
